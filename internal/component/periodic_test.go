package component

import (
	"context"
	"testing"
	"time"
)

func TestPeriodic(t *testing.T) {
	ticks := make(chan struct{}, 10)
	released := false
	p := &Periodic{Label: "p", Every: 10 * time.Millisecond, Setup: func() (func(context.Context), func(), error) {
		return func(context.Context) { ticks <- struct{}{} }, func() { released = true }, nil
	}}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		select {
		case <-ticks:
		case <-time.After(5 * time.Second):
			t.Fatal("no tick")
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if !released {
		t.Fatal("setup's release did not run")
	}
}
