package protocol

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The registry tables of docs/SPEC.md and the constants of this package
// must not drift: this test reads the tables and compares them both ways.

func specTable(t *testing.T, header string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docs", "SPEC.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !in {
			in = line == header
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[0], ":--") {
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("SPEC.md has no table with header %q", header)
	}
	return rows
}

func parseHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
	if err != nil || !strings.HasPrefix(s, "0x") {
		t.Fatalf("bad hex %q", s)
	}
	return v
}

func TestSpecFrameTypes(t *testing.T) {
	rows := specTable(t, "| Type | Name | Lanes | Flags allowed | Section |")
	seen := map[FrameType]bool{}
	for _, r := range rows {
		ft := FrameType(parseHex(t, r[0]))
		seen[ft] = true
		if ft.String() != r[1] {
			t.Errorf("SPEC says %s is %s, code says %s", r[0], r[1], ft)
		}
		lanes := map[LaneRule]string{LaneRuleControl: "0", LaneRuleMessage: "1-3", LaneRuleAny: "any"}[LaneRuleOf(ft)]
		if lanes != r[2] {
			t.Errorf("%s: SPEC lanes %q, code %q", r[1], r[2], lanes)
		}
		flags := "none"
		if a := AllowedFlags(ft); a != 0 {
			flags = strings.ReplaceAll(a.String(), "|", ", ")
		}
		if flags != r[3] {
			t.Errorf("%s: SPEC flags %q, code %q", r[1], r[3], flags)
		}
	}
	for _, ft := range FrameTypes() {
		if !seen[ft] {
			t.Errorf("%s missing from SPEC", ft)
		}
	}
}

func TestSpecFlags(t *testing.T) {
	rows := specTable(t, "| Bit | Name | Field it adds | Frame types |")
	names := FlagNames()
	if len(rows) != len(names) {
		t.Errorf("SPEC lists %d flags, code %d", len(rows), len(names))
	}
	for _, r := range rows {
		fl := Flags(parseHex(t, r[0]))
		if names[fl] != r[1] {
			t.Errorf("SPEC flag %s is %s, code says %q", r[0], r[1], names[fl])
		}
		var types []string
		for _, ft := range FrameTypes() {
			if AllowedFlags(ft)&fl != 0 {
				types = append(types, ft.String())
			}
		}
		specTypes := strings.Split(r[3], ", ")
		slices.Sort(types)
		slices.Sort(specTypes)
		if !slices.Equal(types, specTypes) {
			t.Errorf("flag %s: SPEC types %q, code %q", r[1], r[3], types)
		}
	}
}

func TestSpecErrorCodes(t *testing.T) {
	rows := specTable(t, "| Code | Name | Scope | Meaning |")
	seen := map[ErrorCode]bool{}
	for _, r := range rows {
		c := ErrorCode(parseHex(t, r[0]))
		seen[c] = true
		if c.String() != r[1] {
			t.Errorf("SPEC says %s is %s, code says %s", r[0], r[1], c)
		}
		if c.Scope().String() != r[2] {
			t.Errorf("%s: SPEC scope %q, code %q", r[1], r[2], c.Scope())
		}
	}
	for _, c := range ErrorCodes() {
		if !seen[c] {
			t.Errorf("%s missing from SPEC", c)
		}
	}
}

func TestSpecVerdicts(t *testing.T) {
	rows := specTable(t, "| Verdict | Name | Meaning |")
	if len(rows) != len(Verdicts()) {
		t.Errorf("SPEC lists %d verdicts, code %d", len(rows), len(Verdicts()))
	}
	for _, r := range rows {
		v := Verdict(parseHex(t, r[0]))
		if v.String() != r[1] {
			t.Errorf("SPEC says verdict %s is %s, code says %s", r[0], r[1], v)
		}
	}
}

func TestSpecLanes(t *testing.T) {
	rows := specTable(t, "| Lane | Name | Use |")
	if len(rows) != NumLanes {
		t.Fatalf("SPEC lists %d lanes", len(rows))
	}
	for _, r := range rows {
		n, err := strconv.Atoi(r[0])
		if err != nil || Lane(n).String() != r[1] {
			t.Errorf("SPEC lane %s %s, code %s", r[0], r[1], Lane(n))
		}
	}
}
