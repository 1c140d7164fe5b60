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
	sdk.Serve(sdk.Plugin{Name: "double", Version: "1.0.0", Idempotent: true, Task: sdk.Func(double)})
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
