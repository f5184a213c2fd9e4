package robustness

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func TestLostWrites(t *testing.T) {
	history := []porcupine.Operation{
		op(0, 0, 1, create("a", "v1"), ok("10")),
		op(0, 2, 3, update("a", "v2", "10"), ok("11")),
		op(1, 0, 1, create("b", "w1"), ok("12")),
		op(1, 4, -1, del("b", "12"), output{}),
		op(2, 0, 1, create("c", "x1"), ok("13")),
	}
	cases := []struct {
		name  string
		final finalState
		want  []string
	}{
		{"newest writes present, b deleted", finalState{"a": got("v2", "11"), "b": absent(), "c": got("x1", "13")}, nil},
		{"a later write on top is fine", finalState{"a": got("v9", "20")}, nil},
		{"a rolled back", finalState{"a": got("v1", "10")}, []string{"lost write: a=v2"}},
		{"c gone without a delete", finalState{"c": absent()}, []string{"lost write: c=x1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblems(t, lostWrites(history, c.final), c.want)
		})
	}
}

func TestCompareWatches(t *testing.T) {
	sent := map[string]bool{"v1": true, "v2": true}
	full := watchSpan{server: "s1", start: 5, end: 20, events: []event{
		{Type: "ADDED", Key: "a", Value: "v1", RV: 10}, {Type: "MODIFIED", Key: "a", Value: "v2", RV: 11}, {Type: "DELETED", Key: "a", Value: "v2", RV: 12},
	}}
	cases := []struct {
		name  string
		other watchSpan
		want  []string
	}{
		{"the same events", watchSpan{server: "s2", start: 5, end: 20, events: full.events}, nil},
		{"started later", watchSpan{server: "s2", start: 11, end: 20, events: full.events[2:]}, nil},
		{"a relist gap explains what is missing", watchSpan{server: "s2", start: 5, end: 20, gaps: [][2]int64{{10, 11}}, events: []event{full.events[0], full.events[2]}}, nil},
		{"silently skipped", watchSpan{server: "s2", start: 5, end: 20, events: []event{full.events[0], full.events[2]}}, []string{"s2: missed MODIFIED a=\"v2\" at rv 11"}},
		{"another value at a version", watchSpan{server: "s2", start: 5, end: 20, events: []event{full.events[0], {Type: "MODIFIED", Key: "a", Value: "v1", RV: 11}, full.events[2]}}, []string{"rv 11 is MODIFIED a=\"v1\""}},
		{"a value nobody sent", watchSpan{server: "s2", start: 12, end: 20, events: []event{{Type: "ADDED", Key: "a", Value: "bogus", RV: 13}}}, []string{"s1: missed ADDED a=\"bogus\"", "s2: event ADDED a=\"bogus\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblems(t, compareWatches([]watchSpan{full, c.other}, sent), c.want)
		})
	}
}

func TestCheckOrder(t *testing.T) {
	acked := map[string]ackedWrite{"v1": {key: "a", rv: "10"}, "v2": {key: "a", rv: "11"}, "v0": {key: "a", rv: "4"}}
	cases := []struct {
		name string
		span watchSpan
		want []string
	}{
		{"complete and in order", watchSpan{server: "s1", start: 5, end: 11, events: []event{
			{Type: "ADDED", Key: "a", Value: "v1", RV: 10}, {Type: "MODIFIED", Key: "a", Value: "v2", RV: 11}}}, nil},
		{"repeated", watchSpan{server: "s1", start: 5, end: 11, events: []event{
			{Type: "ADDED", Key: "a", Value: "v1", RV: 10}, {Type: "ADDED", Key: "a", Value: "v1", RV: 10}, {Type: "MODIFIED", Key: "a", Value: "v2", RV: 11}}},
			[]string{"s1: event 1 (ADDED a rv 10) after rv 10"}},
		{"an acknowledged write missing", watchSpan{server: "s1", start: 5, end: 11, events: []event{
			{Type: "ADDED", Key: "a", Value: "v1", RV: 10}}}, []string{"s1: missed the acknowledged write a=v2 at rv 11"}},
		{"outside the span", watchSpan{server: "s1", start: 10, end: 10}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblems(t, checkOrder(c.span, acked), c.want)
		})
	}
}

// wantProblems compares problems with the beginnings expected, in order.
func wantProblems(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %q, want %d problems like %q", got, len(want), want)
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got[i], want[i])
		}
	}
}
