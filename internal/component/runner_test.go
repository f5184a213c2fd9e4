package component

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStopWithin(t *testing.T) {
	failed := errors.New("could not start")
	cases := []struct {
		name    string
		fn      func(ctx context.Context) error
		ownExit bool // the component ends before Stop
		want    error
	}{
		{"ends with its context", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, false, nil},
		{"reports why a stopped start could not finish", func(ctx context.Context) error { <-ctx.Done(); return failed }, false, nil},
		{"failed on its own before the stop", func(ctx context.Context) error { return failed }, true, failed},
		{"ended on its own cleanly", func(ctx context.Context) error { return nil }, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Runner
			r.Run(r.Context(context.Background()), c.fn)
			if c.ownExit {
				select {
				case <-r.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("component did not end")
				}
			}
			if err := r.StopWithin(5 * time.Second); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("StopWithin = %v, want %v", err, c.want)
			}
		})
	}
}
