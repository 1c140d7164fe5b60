package inputs

import "testing"

func TestInts(t *testing.T) {
	items := Ints(12)
	if len(items) != 12 || string(items[0]) != "0" || string(items[11]) != "11" {
		t.Fatalf("Ints(12) = %q", items)
	}
	// Items are capped: appending to one must not overwrite the next.
	_ = append(items[3], '!')
	if string(items[4]) != "4" {
		t.Fatalf("items share capacity: %q", items[4])
	}
}
