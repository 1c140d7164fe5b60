package settings

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Kind is a setting's type.
type Kind int

const (
	Count    Kind = iota // a TOML integer; an int field
	Size                 // bytes: a TOML integer or a size string ("64MiB"); an int or int64 field
	Duration             // a Go duration string ("1m30s"); a time.Duration field
)

// Key is one setting.
type Key struct {
	// Name is its key in pool.toml, e.g. "max_item_bytes".
	Name string
	// Field is the Go field it sets, e.g. "MaxItemBytes".
	Field string
	Kind  Kind
	// Default is what the field's zero value stands for: bytes for sizes,
	// nanoseconds for durations. 0 when the default is what Zero says.
	Default int64
	// Auto, if set, computes a default that depends on the machine
	// (workers: one per core). pool.toml's 0 still says "auto".
	Auto func() int64
	// Min and Max bound a value given in pool.toml or by a flag; Max 0
	// means no bound but the field's type. A Min of 0 accepts 0, which then
	// means the default, as Zero says.
	Min, Max int64
	// Zero says what 0 means when pool.toml accepts it: "one per core",
	// "adaptive", "no limit", "never", "automatic".
	Zero string
	// Span makes an out-of-range value be told the whole range ("must be
	// 1 to 5", "must be between 100ms and 1h0m0s") rather than the bound it
	// crossed.
	Span bool
	// Example is how errors about a duration's syntax show one:
	// `"200ms" or "1m30s"`.
	Example string
	// Flag, if set, is the CLI flag that overrides it (without --),
	// Short its one-letter form, Usage its help.
	Flag, Short, Usage string
	// Doc says what it does, in a line.
	Doc string
}

// Lookup returns the key of table called name, or nil.
func Lookup(table []Key, name string) *Key {
	for i := range table {
		if table[i].Name == name {
			return &table[i]
		}
	}
	return nil
}

// Names returns the names of table's keys, in table order.
func Names(table []Key) []string {
	names := make([]string, len(table))
	for i, k := range table {
		names[i] = k.Name
	}
	return names
}

// FromTOML converts v, a value decoded from TOML, to k's type and checks
// its bounds. The error is a message for a line of pool.toml ("must be at
// most 1024, got 100000").
func (k *Key) FromTOML(v any) (int64, error) {
	var n int64
	switch k.Kind {
	case Count:
		i, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("expected an integer, got %s", Describe(v))
		}
		n = i
	case Size:
		switch x := v.(type) {
		case int64:
			n = x
		case string:
			s, err := ParseSize(x)
			if err != nil {
				return 0, fmt.Errorf("%q is not a size: write a number of bytes (65536) or a number with a unit: \"512KiB\", \"64MiB\", \"1GiB\", \"100MB\"", x)
			}
			n = s
		default:
			return 0, fmt.Errorf("expected an integer number of bytes or a size string such as \"64MiB\", got %s", Describe(v))
		}
	case Duration:
		s, ok := v.(string)
		if !ok {
			return 0, fmt.Errorf("expected a duration string such as %s, got %s", k.Example, Describe(v))
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: write Go syntax such as \"200ms\", \"1m30s\" or \"2h\"", s)
		}
		n = int64(d)
	}
	return n, k.Check(n)
}

// Check reports a value out of k's bounds, in pool.toml's words.
func (k *Key) Check(n int64) error {
	show := k.format
	switch {
	case k.Span && (n < k.Min || k.Max > 0 && n > k.Max):
		if k.Kind == Duration {
			return fmt.Errorf("must be between %s and %s, got %s", show(k.Min), show(k.Max), show(n))
		}
		zero := ""
		if k.Min == 0 && k.Zero != "" {
			zero = " (" + k.Zero + ")"
		}
		return fmt.Errorf("must be %s%s to %s, got %s", show(k.Min), zero, show(k.Max), show(n))
	case n < k.Min && k.Min == 1 && k.Kind == Duration:
		return fmt.Errorf("must be > 0, got %s", show(n))
	case n < k.Min:
		return fmt.Errorf("must be >= %s, got %s", show(k.Min), show(n))
	case k.Max > 0 && n > k.Max:
		return fmt.Errorf("must be at most %s, got %s", show(k.Max), show(n))
	case n > math.MaxInt:
		return fmt.Errorf("%s is too large", show(n))
	}
	return nil
}

// format shows a value of k's type as Go does: 1024, 1m0s.
func (k *Key) format(n int64) string {
	if k.Kind == Duration {
		return time.Duration(n).String()
	}
	return strconv.FormatInt(n, 10)
}

// FormatDefault shows k's default as pool.toml writes it: 2, "64MiB",
// "10s", or what 0 means.
func (k *Key) FormatDefault() string {
	switch {
	case k.Default == 0 && k.Zero != "":
		return "0 (" + k.Zero + ")"
	case k.Kind == Size:
		return FormatSize(k.Default)
	}
	return k.format(k.Default)
}

// Apply fills in the defaults of dst, a pointer to a struct such as
// pool.Config, and checks its values: for every key of the tables whose
// Field dst has, a zero becomes the default, a negative value or one out
// of bounds is a problem named after the field ("Workers must be at most
// 1024, got 100000"). It returns every problem.
func Apply(dst any, tables ...[]Key) []error {
	v := reflect.ValueOf(dst).Elem()
	var errs []error
	for _, table := range tables {
		for i := range table {
			k := &table[i]
			f := v.FieldByName(k.Field)
			if !f.IsValid() {
				continue
			}
			n := f.Int()
			switch {
			case n < 0:
				errs = append(errs, fmt.Errorf("%s must be >= 0, got %s", k.Field, k.format(n)))
				continue
			case n == 0 && k.Auto != nil:
				n = k.Auto()
			case n == 0:
				n = k.Default
			}
			f.SetInt(n)
			if n == 0 {
				continue // what Zero says
			}
			switch {
			case k.Span && (n < k.Min || k.Max > 0 && n > k.Max):
				if k.Kind == Duration {
					errs = append(errs, fmt.Errorf("%s must be between %s and %s, got %s", k.Field, k.format(k.Min), k.format(k.Max), k.format(n)))
				} else {
					errs = append(errs, fmt.Errorf("%s must be %s to %s, got %s", k.Field, k.format(k.Min), k.format(k.Max), k.format(n)))
				}
			case k.Max > 0 && n > k.Max:
				errs = append(errs, fmt.Errorf("%s must be at most %s, got %s", k.Field, k.format(k.Max), k.format(n)))
			}
		}
	}
	return errs
}

// Defaults sets every field of dst that the table's keys name to its
// default as pool.toml states it: the Default, or 0 where Zero says what
// 0 means (workers: 0, one per core).
func Defaults(dst any, table []Key) {
	v := reflect.ValueOf(dst).Elem()
	for i := range table {
		if f := v.FieldByName(table[i].Field); f.IsValid() {
			f.SetInt(table[i].Default)
		}
	}
}

// Set sets the field k names in dst to n.
func Set(dst any, k *Key, n int64) {
	reflect.ValueOf(dst).Elem().FieldByName(k.Field).SetInt(n)
}

// Get returns the field k names in src, a pointer to a struct.
func Get(src any, k *Key) int64 {
	return reflect.ValueOf(src).Elem().FieldByName(k.Field).Int()
}

// Has reports whether the struct v points to has k's field.
func Has(v any, k *Key) bool {
	return reflect.ValueOf(v).Elem().FieldByName(k.Field).IsValid()
}

// Copy copies each setting of table that both dst and src (pointers to
// structs) have from src to dst: a config file's [cluster] table to a
// cluster.Config, say, whatever keys the table gains.
func Copy(dst, src any, table []Key) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range table {
		df, sf := d.FieldByName(table[i].Field), s.FieldByName(table[i].Field)
		if df.IsValid() && sf.IsValid() {
			df.SetInt(sf.Int())
		}
	}
}

// Describe names a decoded TOML value's type, with the value when short.
func Describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case time.Time:
		return "a datetime"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// cores is the number of CPUs, for the workers' default.
func cores() int64 { return int64(runtime.NumCPU()) }
