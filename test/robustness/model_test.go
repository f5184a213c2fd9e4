package robustness

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a shorthand for one recorded operation; ret < 0 means unknown.
func op(client int, call, ret int64, in input, out output) porcupine.Operation {
	if ret < 0 {
		ret, out = 1<<62-1, output{Unknown: true}
	}
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func create(k, v string) input           { return input{Kind: opCreate, Key: k, Value: v} }
func update(k, v, rv string) input       { return input{Kind: opUpdate, Key: k, Value: v, ExpectRV: rv} }
func del(k, rv string) input             { return input{Kind: opDelete, Key: k, ExpectRV: rv} }
func get(k string) input                 { return input{Kind: opGet, Key: k} }
func ok(rv string) output                { return output{RV: rv} }
func got(v, rv string) output            { return output{Exists: true, Value: v, RV: rv} }
func failed(result string) output        { return output{Result: result} }
func absent() output                     { return output{} }
func check(h []porcupine.Operation) bool { r, _ := linearizable(h, time.Minute); return r == "" }

func TestModel(t *testing.T) {
	cases := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"sequential create, update, read, delete", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 3, update("a", "v2", "10"), ok("11")),
			op(1, 4, 5, get("a"), got("v2", "11")),
			op(0, 6, 7, del("a", "11"), ok("")),
			op(1, 8, 9, get("a"), absent()),
		}, true},
		{"a read after an acknowledged write sees an older value", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 3, update("a", "v2", "10"), ok("11")),
			op(1, 4, 5, get("a"), got("v1", "10")),
		}, false},
		{"a read overlapping a write may see either value", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 6, update("a", "v2", "10"), ok("11")),
			op(1, 3, 4, get("a"), got("v1", "10")),
			op(2, 3, 5, get("a"), got("v2", "11")),
		}, true},
		{"an acknowledged create is gone without a delete", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(1, 2, 3, get("a"), absent()),
		}, false},
		{"a create of unknown outcome that took effect", []porcupine.Operation{
			op(0, 0, -1, create("a", "v1"), output{}),
			op(1, 2, 3, get("a"), got("v1", "10")),
			op(1, 4, 5, update("a", "v2", "10"), ok("11")),
		}, true},
		{"a create of unknown outcome that never took effect", []porcupine.Operation{
			op(0, 0, -1, create("a", "v1"), output{}),
			op(1, 2, 3, get("a"), absent()),
			op(1, 4, 5, create("a", "v2"), ok("12")),
		}, true},
		{"an update of unknown outcome cannot take effect twice", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, -1, update("a", "v2", "10"), output{}),
			op(1, 3, 4, get("a"), got("v2", "11")),
			op(1, 5, 6, update("a", "v3", "11"), ok("12")),
			op(1, 7, 8, get("a"), got("v2", "13")),
		}, false},
		{"a conflict although the version matched", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 3, update("a", "v2", "10"), failed(resConflict)),
		}, false},
		{"a success although the version did not match", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 3, update("a", "v2", "10"), ok("11")),
			op(1, 4, 5, update("a", "v3", "10"), ok("12")),
		}, false},
		{"a create answered exists although nothing was there", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), failed(resExists)),
		}, false},
		{"keys are independent", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(1, 0, 1, create("b", "v2"), ok("11")),
			op(0, 2, 3, get("b"), got("v2", "11")),
			op(1, 2, 3, get("a"), got("v1", "10")),
		}, true},
		{"a delete with a stale version is refused and changes nothing", []porcupine.Operation{
			op(0, 0, 1, create("a", "v1"), ok("10")),
			op(0, 2, 3, update("a", "v2", "10"), ok("11")),
			op(1, 4, 5, del("a", "10"), failed(resConflict)),
			op(1, 6, 7, get("a"), got("v2", "11")),
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := check(c.history); got != c.want {
				t.Errorf("linearizable = %v, want %v", got, c.want)
			}
		})
	}
}
