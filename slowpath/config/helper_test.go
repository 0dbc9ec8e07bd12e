package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestHelperKeys: a set with helper = "ftp" gets expect_timeout (60 s by
// default) and must list passive_ports; a set without a helper has neither.
func TestHelperKeys(t *testing.T) {
	const nat = "ports = [\"21\"]\nforwarding = \"nat\"\nserver = [{ address = \"198.51.100.11\" }]\n"
	for _, tc := range []struct {
		src     string
		timeout time.Duration
		passive []config.PortRange
	}{
		{nat + "helper = \"ftp\"\npassive_ports = [\"30000-30099\"]\n", 60 * time.Second, []config.PortRange{{First: 30000, Last: 30099}}},
		{nat + "helper = \"ftp\"\nexpect_timeout = \"15s\"\npassive_ports = [\"30000-30049\", \"40000\"]\n", 15 * time.Second,
			[]config.PortRange{{First: 30000, Last: 30049}, {First: 40000, Last: 40000}}},
		{nat + "helper = \"ftp\"\npassive_ports = []\n", 60 * time.Second, []config.PortRange{}},
		{nat, 0, nil},
	} {
		s, err := config.Parse("t.toml", []byte(setHead+tc.src))
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		ts := s.TargetSets[0]
		if ts.ExpectTimeout != tc.timeout || !reflect.DeepEqual(ts.PassivePorts, tc.passive) {
			t.Errorf("Parse(%q) = expect_timeout %s, passive_ports %v, want %s, %v", tc.src, ts.ExpectTimeout, ts.PassivePorts,
				tc.timeout, tc.passive)
		}
	}
}

// TestHelperKeysRefused: every misuse of the helper's keys is an error
// naming the key.
func TestHelperKeysRefused(t *testing.T) {
	const nat = "ports = [\"21\"]\nforwarding = \"nat\"\nserver = [{ address = \"198.51.100.11\" }]\n"
	for _, tc := range []struct{ src, want string }{
		{nat + "expect_timeout = \"10s\"\n", "target_set[0].expect_timeout: expect_timeout applies only to a set with a helper"},
		{nat + "passive_ports = [\"30000-30099\"]\n", "target_set[0].passive_ports: passive_ports applies only to a set with a helper"},
		{nat + "helper = \"ftp\"\n", "target_set[0].passive_ports: required key is missing"},
		{nat + "helper = \"ftp\"\npassive_ports = [\"*\"]\n", `target_set[0].passive_ports[0]: "*" would hand every connection`},
		{nat + "helper = \"ftp\"\npassive_ports = [\"20-30099\"]\n", "target_set[0].passive_ports[0]: passive port range 20-30099 starts below 1024"},
		{nat + "helper = \"ftp\"\npassive_ports = [\"30099-30000\"]\n", "target_set[0].passive_ports[0]: port range 30099-30000 is reversed"},
		{nat + "helper = \"ftp\"\npassive_ports = [30000]\n", "target_set[0].passive_ports[0]:"},
		{nat + "helper = \"ftp\"\npassive_ports = [\"30000\"]\nexpect_timeout = \"0s\"\n", "target_set[0].expect_timeout: expect_timeout 0s is outside 1s..1h0m0s"},
		{nat + "helper = \"ftp\"\npassive_ports = [\"30000\"]\nexpect_timeout = \"2h\"\n", "target_set[0].expect_timeout: expect_timeout 2h0m0s is outside"},
	} {
		_, err := config.Parse("t.toml", []byte(setHead+tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
}
