package cluster

import "testing"

func TestNodePodCIDR(t *testing.T) {
	for _, tc := range []struct {
		cluster string
		i       int
		want    string
	}{
		{"127.1.0.0/16", 0, "127.1.0.0/24"},
		{"127.1.0.0/16", 3, "127.1.3.0/24"},
		{"127.3.0.0/16", 255, "127.3.255.0/24"},
		{"127.1.0.0/16", 256, ""},
		{"127.1.0.0/25", 0, ""},
	} {
		got, err := nodePodCIDR(tc.cluster, tc.i)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("nodePodCIDR(%s, %d) = %q, %v; want %q", tc.cluster, tc.i, got, err, tc.want)
		}
	}
}
