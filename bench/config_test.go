package bench

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSources(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, c := range []struct {
		in   string
		want []netip.Addr
		err  string
	}{
		{in: "", want: nil},
		{in: "127.0.0.1", want: addrs("127.0.0.1")},
		{in: "127.0.0.1-127.0.0.4", want: addrs("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")},
		{in: "127.0.0.8-9, 127.0.1.1", want: addrs("127.0.0.8", "127.0.0.9", "127.0.1.1")},
		{in: "127.0.0.255-127.0.1.0", want: addrs("127.0.0.255", "127.0.1.0")},
		{in: "::1", want: addrs("::1")},
		{in: "127.0.0.4-127.0.0.1", err: "backwards"},
		{in: "127.0.0.1-x", err: "source range"},
		{in: "127.0.0.1-256", err: "source range"},
		{in: "::1-::2", err: "only IPv4"},
		{in: "localhost", err: "source"},
		{in: "10.0.0.0-10.1.0.0", err: "more than"},
	} {
		got, err := ParseSources(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSources(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseSources(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Scenario: "pubsub"}.WithDefaults()
	if c.Conns != 1 || c.Size != 16 || c.Window != 1000 || c.Addr != "127.0.0.1:7100" || c.Duration != 10*time.Second {
		t.Errorf("pubsub defaults: %+v", c)
	}
	// Timestamped scenarios need 16 bytes.
	if c := (Config{Scenario: "direct", Size: 4}).WithDefaults(); c.Size != stampSize || c.Conns != 2 {
		t.Errorf("direct: size %d, conns %d", c.Size, c.Conns)
	}
	// Light echo carries an 8-byte send time; the full client's echo no
	// stamp at all.
	if c := (Config{Scenario: "echo", Light: true, Size: 3}).WithDefaults(); c.Size != lightStampSize {
		t.Errorf("light echo: size %d", c.Size)
	}
	if c := (Config{Scenario: "echo", Size: 3}).WithDefaults(); c.Size != 3 {
		t.Errorf("echo: size %d", c.Size)
	}
	if c := (Config{Scenario: "idle"}).WithDefaults(); c.Heartbeat != time.Hour {
		t.Errorf("idle heartbeat %v", c.Heartbeat)
	}
	if c := (Config{Scenario: "reconnect-storm", Duration: 3 * time.Second}).WithDefaults(); c.DropAfter != time.Second || c.StormVia != "direct" {
		t.Errorf("storm: drop after %v, via %q", c.DropAfter, c.StormVia)
	}
	for _, s := range Scenarios {
		if err := (Config{Scenario: s}).WithDefaults().Validate(); err != nil {
			t.Errorf("%s: defaults do not validate: %v", s, err)
		}
		if scenarioFuncs[s] == nil {
			t.Errorf("%s: no implementation", s)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Scenario: "nope"}, "unknown scenario"},
		{Config{Scenario: "direct", Conns: 3}, "even"},
		{Config{Scenario: "echo", Lane: 4}, "--lane"},
		{Config{Scenario: "echo", Rate: -1}, "--rate"},
		{Config{Scenario: "echo", Fill: "lorem"}, "--fill"},
		{Config{Scenario: "echo", Size: 1 << 30}, "--size"},
		{Config{Scenario: "reconnect-storm", Duration: time.Second, DropAfter: 2 * time.Second}, "--drop-after"},
		{Config{Scenario: "reconnect-storm", StormVia: "carrier pigeon"}, "--via"},
		{Config{Scenario: "echo", ServerPID: -1}, "--server-pid"},
		{Config{Scenario: "pubsub", Light: true}, "--light is for echo only"},
		{Config{Scenario: "idle", Light: true}, "--light is for echo only"},
		{Config{Scenario: "echo", Light: true, Rate: 100}, "--rate"},
		{Config{Scenario: "echo", Light: true, Compression: true}, "--compression"},
		{Config{Scenario: "echo", Light: true, Size: maxLightSize + 1}, "--size must be at most 16384"},
	} {
		err := c.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	for _, ok := range []Config{
		{Scenario: "echo", Light: true, Inflight: 64, Size: maxLightSize, Sources: mustSources(t, "127.0.0.1-4")},
		{Scenario: "echo", Rate: 100, Compression: true, Size: 1 << 20},
		{Scenario: "idle", ServerPID: 1},
	} {
		if err := ok.WithDefaults().Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}
