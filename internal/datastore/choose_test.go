package datastore

import (
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	cases := []struct {
		in      Inputs
		want    Kind
		ignored string
	}{
		{Inputs{}, SQLite, ""},
		{Inputs{ClusterInit: true}, EtcdNew, ""},
		{Inputs{ServerURL: "https://a:6443"}, EtcdJoin, ""},
		{Inputs{ServerURL: "https://a:6443", ClusterInit: true}, EtcdJoin, ""},
		{Inputs{DatastoreEndpoint: "postgres://x"}, External, ""},
		{Inputs{DatastoreEndpoint: "postgres://x", ServerURL: "https://a:6443"}, External, ""},
		{Inputs{EtcdData: true}, EtcdExisting, ""},
		{Inputs{EtcdData: true, ClusterInit: true, ServerURL: "https://b:6443", DatastoreEndpoint: "mysql://x"}, EtcdExisting, "--cluster-init,--server,--datastore-endpoint"},
	}
	for _, c := range cases {
		got := Choose(c.in)
		if got.Kind != c.want || strings.Join(got.Ignored, ",") != c.ignored {
			t.Errorf("Choose(%+v) = %v %v, want %v %q", c.in, got.Kind, got.Ignored, c.want, c.ignored)
		}
	}
}
