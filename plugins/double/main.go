// Command double is the plugin behind `pluginpool map double 1 2 3 4 5`:
// the seed's process_task, x -> 2x, for any JSON number, exactly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pluginpool/pluginpool/internal/quote"
	"github.com/pluginpool/pluginpool/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{Name: "double", Version: "1.0.0", Idempotent: true, Task: sdk.Func(doubleFast)})
}

// number is a JSON number that decodes and encodes itself without
// allocating when it is an int64, the common case: a json.Number in and
// out cost a string allocation each way, ~30% of the plugin's CPU on a
// 1M-item map. Other numbers keep their text and go through double,
// exactly.
type number struct {
	i     int64
	isInt bool
	text  json.Number
}

// UnmarshalJSON takes an integer as it is and any other JSON number as
// text; anything else is a decode error the host reports for that item.
func (n *number) UnmarshalJSON(b []byte) error {
	if i, ok := parseInt(b); ok {
		*n = number{i: i, isInt: true}
		return nil
	}
	if _, ok := parseDecimal(b); ok {
		*n = number{text: json.Number(b)}
		return nil
	}
	var raw json.RawMessage
	switch {
	case !json.Valid(b):
		return json.Unmarshal(b, &raw) // the syntax error, as encoding/json words it
	case b[0] == '"':
		return errors.New("want a number, got a JSON string")
	case b[0] == 'n':
		return errors.New("want a number, got null")
	case b[0] == 't' || b[0] == 'f':
		return errors.New("want a number, got a JSON bool")
	case b[0] == '{':
		return errors.New("want a number, got a JSON object")
	}
	return errors.New("want a number, got a JSON array")
}

// AppendJSON writes the number as encoding/json would.
func (n number) AppendJSON(b []byte) ([]byte, error) {
	if n.isInt {
		return strconv.AppendInt(b, n.i, 10), nil
	}
	return append(b, n.text...), nil
}

// doubleFast doubles int64s in place and hands everything else to double.
func doubleFast(ctx context.Context, n number) (number, error) {
	if n.isInt && n.i <= math.MaxInt64/2 && n.i >= math.MinInt64/2 {
		return number{i: 2 * n.i, isInt: true}, nil
	}
	text := n.text
	if n.isInt {
		text = json.Number(strconv.FormatInt(n.i, 10))
	}
	r, err := double(ctx, text)
	return number{text: r}, err
}

// double doubles a JSON number exactly: doubling a decimal is digit
// arithmetic, so no digit is ever lost (a float64 keeps 17 significant
// digits: 123456789012345678901234567890 came back as
// 2.4691357802469136e+29). An integer is written as an integer, whatever
// its size. Any other number is written the way encoding/json writes a
// float64, plain from 1e-6 to 1e21 and in exponent form outside, but
// with every digit of the exact result: 0.1 gives 0.2, 1e400 gives
// 2e+400. Anything else fails its item.
func double(_ context.Context, n json.Number) (json.Number, error) {
	if n == "" { // encoding/json decodes null into json.Number as ""
		return "", &sdk.DecodeError{Input: []byte("null"), Type: "json.Number", Err: errors.New("want a number, got null")}
	}
	d, ok := parseDecimal([]byte(n))
	if !ok {
		return "", fmt.Errorf("want a number, got %s", quote.Item([]byte(n)))
	}
	if d.exp > maxExp || d.exp < -maxExp {
		return "", fmt.Errorf("%s: exponent out of range (at most %d either way)", quote.Item([]byte(n)), maxExp)
	}
	d.digits = twice(d.digits)
	if d.integer {
		return json.Number(d.appendInteger(nil)), nil
	}
	return json.Number(d.appendFloat(nil)), nil
}

// maxExp bounds the exponents double takes: past it a number is not one
// anybody computes with, and exponent arithmetic must not overflow.
const maxExp int64 = 1e15

// decimal is a JSON number: (-)digits × 10^exp, exactly.
type decimal struct {
	neg     bool
	digits  []byte // decimal digits, most significant first, no leading zeros ("0" for zero)
	exp     int64
	integer bool // written without a fraction or an exponent
}

// parseDecimal parses exactly one JSON number.
func parseDecimal(b []byte) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(b) && b[i] == '-' {
		d.neg = true
		i++
	}
	start := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return d, false
	}
	d.digits = append(d.digits, b[start:i]...)
	d.integer = true
	if i < len(b) && b[i] == '.' {
		i++
		f := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == f {
			return d, false
		}
		d.digits = append(d.digits, b[f:i]...)
		d.exp = -int64(i - f)
		d.integer = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		f := i
		var e int64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e <= 2*maxExp { // past it, out of range whatever follows
				e = e*10 + int64(b[i]-'0')
			}
			i++
		}
		if i == f {
			return d, false
		}
		if neg {
			e = -e
		}
		d.exp += e
		d.integer = false
	}
	if i != len(b) {
		return d, false
	}
	d.digits = trimLeadingZeros(d.digits)
	return d, true
}

func trimLeadingZeros(digits []byte) []byte {
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	return digits
}

// twice doubles a string of decimal digits, in place when it does not
// grow.
func twice(digits []byte) []byte {
	carry := byte(0)
	for i := len(digits) - 1; i >= 0; i-- {
		v := (digits[i]-'0')*2 + carry
		digits[i], carry = '0'+v%10, v/10
	}
	if carry > 0 {
		digits = append([]byte{'1'}, digits...)
	}
	return digits
}

// appendInteger writes an integer's digits: zero has no sign.
func (d decimal) appendInteger(b []byte) []byte {
	if d.neg && string(d.digits) != "0" {
		b = append(b, '-')
	}
	return append(b, d.digits...)
}

// appendFloat writes d as encoding/json writes a float64 of that value,
// every digit kept: plain when 1e-6 <= |d| < 1e21, else d.ddde±x.
func (d decimal) appendFloat(b []byte) []byte {
	digits, exp := d.digits, d.exp
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits, exp = digits[:len(digits)-1], exp+1
	}
	if d.neg {
		b = append(b, '-') // -0 too, as encoding/json writes it
	}
	if string(digits) == "0" {
		return append(b, '0')
	}
	sci := int64(len(digits)) - 1 + exp // the exponent of the first digit
	switch {
	case sci < -6 || sci >= 21:
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if sci >= 0 {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, sci, 10)
	case exp >= 0:
		b = append(b, digits...)
		return append(b, strings.Repeat("0", int(exp))...)
	}
	point := int64(len(digits)) + exp // digits before the decimal point
	if point > 0 {
		b = append(b, digits[:point]...)
		b = append(b, '.')
		return append(b, digits[point:]...)
	}
	b = append(b, "0."...)
	b = append(b, strings.Repeat("0", int(-point))...)
	return append(b, digits...)
}

// parseInt parses a JSON integer that fits an int64, without allocating:
// strconv.ParseInt needs a string. Up to 18 digits, which cannot overflow;
// longer ones take the general path.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
