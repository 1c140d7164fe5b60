// Command double is the plugin behind `pluginpool map double 1 2 3 4 5`:
// the seed's process_task, x -> 2x, for any JSON number.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/pluginpool/pluginpool/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{Name: "double", Version: "1.0.0", Idempotent: true, Task: sdk.Func(doubleFast)})
}

// number is a JSON number that decodes and encodes itself without
// allocating when it is an int64, the common case: a json.Number in and
// out cost a string allocation each way, ~30% of the plugin's CPU on a
// 1M-item map. Other numbers keep their text and go through double.
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
	var v any
	switch {
	case json.Unmarshal(b, &v) != nil:
		return json.Unmarshal(b, &v) // the syntax error, as encoding/json words it
	case b[0] == '"':
		return errors.New("want a number, got a JSON string")
	case b[0] == 'n':
		return errors.New("want a number, got null")
	case b[0] == 't' || b[0] == 'f':
		return errors.New("want a number, got a JSON bool")
	case b[0] == '{':
		return errors.New("want a number, got a JSON object")
	case b[0] == '[':
		return errors.New("want a number, got a JSON array")
	}
	*n = number{text: json.Number(b)}
	return nil
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

// double doubles a JSON number. Integers that fit an int64 are doubled
// exactly, past int64 if they must; other numbers are doubled as float64
// and written as encoding/json writes floats. json.Number in and out keeps
// the SDK's codec off reflection and writes 2 as 4, never 4.0 or 4e+00.
// Anything else fails its item; the SDK names the input and what it was.
func double(_ context.Context, n json.Number) (json.Number, error) {
	if n == "" { // encoding/json decodes null into json.Number as ""
		return "", &sdk.DecodeError{Input: []byte("null"), Type: "json.Number", Err: errors.New("want a number, got null")}
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i > math.MaxInt64/2 || i < math.MinInt64/2 {
			return json.Number(new(big.Int).Lsh(big.NewInt(i), 1).String()), nil
		}
		return json.Number(strconv.FormatInt(2*i, 10)), nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return "", fmt.Errorf("%s is out of range for a float64", n)
	case err != nil:
		return "", fmt.Errorf("want a number, got %q", string(n))
	case math.IsInf(2*f, 0):
		return "", fmt.Errorf("2 * %s overflows a float64", n)
	}
	return json.Number(formatFloat(2 * f)), nil
}

// formatFloat formats f as encoding/json does: plain up to 1e21, exponent
// form beyond and below 1e-6, with e-7 rather than e-07.
func formatFloat(f float64) string {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if n := len(s); format == 'e' && n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
		s = s[:n-2] + s[n-1:]
	}
	return s
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
