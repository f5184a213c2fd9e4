package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"
)

// sink accepts TCP connections: one that starts with 'e' gets every byte
// echoed (round trips), any other is read and discarded (throughput).
func sink(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("READY")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			first := make([]byte, 1)
			if _, err := io.ReadFull(c, first); err != nil {
				return
			}
			if first[0] == 'e' {
				_, _ = io.Copy(c, c)
				return
			}
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// blast sends as fast as it can for the given seconds and prints the rate.
func blast(addr, seconds string) error {
	secs, err := strconv.ParseFloat(seconds, 64)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	buf[0] = 'd'
	var sent int64
	start := time.Now()
	deadline := start.Add(time.Duration(secs * float64(time.Second)))
	for time.Now().Before(deadline) {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			return err
		}
	}
	took := time.Since(start).Seconds()
	fmt.Printf("MBIT_PER_S=%.0f\n", float64(sent)*8/took/1e6)
	return nil
}

// rtt makes count one-byte round trips on one connection and prints the
// median and the 99th percentile in microseconds.
func rtt(addr, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return fmt.Errorf("count %q", count)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'e'}); err != nil {
		return err
	}
	b := []byte{'x'}
	samples := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	fmt.Printf("RTT_US_P50=%d RTT_US_P99=%d\n", samples[n/2].Microseconds(), samples[n*99/100].Microseconds())
	return nil
}

// probe opens a new TCP connection every 20 ms (each judged afresh by a
// network policy) and prints, whenever the outcome changes, the Unix time
// in nanoseconds at which the deciding attempt began and "up" or "down".
func probe(addr string) error {
	last := ""
	for {
		start := time.Now()
		state := "up"
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			state = "down"
		} else {
			c.Close()
		}
		if state != last {
			fmt.Printf("%d %s\n", start.UnixNano(), state)
			last = state
		}
		time.Sleep(20 * time.Millisecond)
	}
}
