// Package robustness checks that k3ha keeps its promise under faults: many
// clients write ConfigMaps through every server while servers are killed,
// paused and cut off, and the history they saw must be linearizable
// (porcupine), every acknowledged write must survive, and every watch must
// see every change in order, once.
package robustness

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Kinds of operations on one ConfigMap.
const (
	opCreate = "create"
	opGet    = "get"
	opUpdate = "update" // with the resourceVersion precondition: a compare-and-swap
	opDelete = "delete" // with the resourceVersion precondition
)

// Results of an operation the server answered; "" is success.
const (
	resExists   = "exists"
	resNotFound = "notfound"
	resConflict = "conflict"
)

// input is one operation on one key (a ConfigMap name).
type input struct {
	Kind     string `json:"kind"`
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`    // create, update
	ExpectRV string `json:"expectRV,omitempty"` // update, delete
}

// output is what the client saw. Unknown: no answer (a timeout, a reset
// connection, a 5xx): the operation may or may not have taken effect.
type output struct {
	Unknown bool   `json:"unknown,omitempty"`
	Result  string `json:"result,omitempty"`
	Exists  bool   `json:"exists,omitempty"` // get
	Value   string `json:"value,omitempty"`  // get
	RV      string `json:"rv,omitempty"`     // get, create, update
}

// state is one ConfigMap: absent, or present with a value and the
// resourceVersion of its last write ("" when that write's answer was lost,
// so its resourceVersion was never seen).
type state struct {
	Exists bool
	Value  string
	RV     string
}

// model is a register with a version per ConfigMap.
var model = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init:  func() []any { return []any{state{}} },
	Step:  func(s, in, out any) []any { return step(s.(state), in.(input), out.(output)) },
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		res := o.Result
		switch {
		case o.Unknown:
			res = "unknown"
		case res == "":
			res = "ok rv=" + o.RV
		}
		switch i.Kind {
		case opGet:
			if o.Unknown || o.Result != "" {
				return fmt.Sprintf("get(%s) → %s", i.Key, res)
			}
			if !o.Exists {
				return fmt.Sprintf("get(%s) → absent", i.Key)
			}
			return fmt.Sprintf("get(%s) → %s rv=%s", i.Key, o.Value, o.RV)
		case opCreate:
			return fmt.Sprintf("create(%s, %s) → %s", i.Key, i.Value, res)
		case opUpdate:
			return fmt.Sprintf("update(%s, %s, if rv=%s) → %s", i.Key, i.Value, i.ExpectRV, res)
		}
		return fmt.Sprintf("delete(%s, if rv=%s) → %s", i.Key, i.ExpectRV, res)
	},
	DescribeState: func(s any) string {
		st := s.(state)
		if !st.Exists {
			return "absent"
		}
		return fmt.Sprintf("%s rv=%s", st.Value, st.RV)
	},
}

// rvMatches tells whether a precondition on rv holds in s; an unknown
// resourceVersion may be anything.
func rvMatches(s state, rv string) (yes, no bool) {
	if s.RV == "" {
		return true, true
	}
	return s.RV == rv, s.RV != rv
}

// step returns the states s may be in after the operation, none when the
// operation could not have had that output in state s.
func step(s state, in input, out output) []any {
	if out.Unknown {
		// Not applied at all, or applied as asked (resourceVersion unseen).
		states := []any{s}
		switch in.Kind {
		case opCreate:
			if !s.Exists {
				states = append(states, state{Exists: true, Value: in.Value})
			}
		case opUpdate:
			if yes, _ := rvMatches(s, in.ExpectRV); s.Exists && yes {
				states = append(states, state{Exists: true, Value: in.Value})
			}
		case opDelete:
			if yes, _ := rvMatches(s, in.ExpectRV); s.Exists && yes {
				states = append(states, state{})
			}
		}
		return states
	}
	switch in.Kind {
	case opGet:
		if out.Exists != s.Exists {
			return nil
		}
		if !s.Exists {
			return []any{s}
		}
		if out.Value != s.Value || (s.RV != "" && out.RV != s.RV) {
			return nil
		}
		return []any{state{Exists: true, Value: s.Value, RV: out.RV}}
	case opCreate:
		switch {
		case out.Result == "" && !s.Exists:
			return []any{state{Exists: true, Value: in.Value, RV: out.RV}}
		case out.Result == resExists && s.Exists:
			return []any{s}
		}
	case opUpdate:
		yes, no := rvMatches(s, in.ExpectRV)
		switch {
		case out.Result == "" && s.Exists && yes:
			return []any{state{Exists: true, Value: in.Value, RV: out.RV}}
		case out.Result == resConflict && s.Exists && no:
			return []any{s}
		case out.Result == resNotFound && !s.Exists:
			return []any{s}
		}
	case opDelete:
		yes, no := rvMatches(s, in.ExpectRV)
		switch {
		case out.Result == "" && s.Exists && yes:
			return []any{state{}}
		case out.Result == resConflict && s.Exists && no:
			return []any{s}
		case out.Result == resNotFound && !s.Exists:
			return []any{s}
		}
	}
	return nil
}
