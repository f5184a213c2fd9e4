package robustness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anishathalye/porcupine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// namespace holds the ConfigMaps the clients work on; they carry a label
// of their own so lists and watches see nothing else (the probes of the
// test's own waits, for one).
const (
	namespace = "default"
	label     = "k3ha-robustness"
	selector  = label + "=1"
)

// configMap is the object a client writes: its value in data.v.
func configMap(key, rv, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: key, ResourceVersion: rv, Labels: map[string]string{label: "1"}},
		Data:       map[string]string{"v": value},
	}
}

// recorder collects the history of every client.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// acked are the writes the server confirmed, by value (values are
	// unique): each must still be visible, or overwritten, at the end.
	acked map[string]ackedWrite
}

type ackedWrite struct {
	key, rv string
	at      time.Duration
}

func newRecorder() *recorder { return &recorder{start: time.Now(), acked: map[string]ackedWrite{}} }

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(client int, in input, call int64, out output) {
	r.addAt(client, in, call, r.now(), out)
}

func (r *recorder) addAt(client int, in input, call, ret int64, out output) {
	if out.Unknown {
		// Its effect may land any time later: porcupine may place it anywhere after its call.
		ret = 1<<62 - 1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	if !out.Unknown && out.Result == "" && (in.Kind == opCreate || in.Kind == opUpdate) {
		r.acked[in.Value] = ackedWrite{key: in.Key, rv: out.RV, at: time.Duration(ret)}
	}
}

// ackedWrites is a copy of the acknowledged writes, by value.
func (r *recorder) ackedWrites() map[string]ackedWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.acked)
}

// newestAckedRV is the highest resourceVersion an acknowledged write got.
func (r *recorder) newestAckedRV() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var newest int64
	for _, a := range r.acked {
		if rv, err := strconv.ParseInt(a.rv, 10, 64); err == nil && rv > newest {
			newest = rv
		}
	}
	return newest
}

func (r *recorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// worker does random operations on a few ConfigMaps through one server's
// API until ctx ends.
type worker struct {
	id     int
	client kubernetes.Interface
	rec    *recorder
	rng    *rand.Rand
	keys   []string
	pace   time.Duration
	// known is the last resourceVersion this worker saw of each key, for
	// its preconditions (it may be stale: conflicts are part of the test).
	known map[string]string
	seq   int
}

func (w *worker) run(ctx context.Context) {
	w.known = map[string]string{}
	for ctx.Err() == nil {
		w.one(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(w.pace):
		}
	}
}

// one does one random operation. A list counts as a get of every key at
// once (each must be linearizable within the list's call and return).
func (w *worker) one(ctx context.Context) {
	key := w.keys[w.rng.Intn(len(w.keys))]
	w.seq++
	value := fmt.Sprintf("w%d-%d", w.id, w.seq)
	call := w.rec.now()
	opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cms := w.client.CoreV1().ConfigMaps(namespace)
	record := func(in input, err error, out output) {
		if err != nil && notSent(err) {
			return
		}
		w.rec.add(w.id, in, call, out)
	}
	switch p := w.rng.Intn(100); {
	case p < 30:
		cm, err := cms.Get(opCtx, key, metav1.GetOptions{})
		out := output{}
		switch {
		case err == nil:
			out.Exists, out.Value, out.RV = true, cm.Data["v"], cm.ResourceVersion
			w.known[key] = cm.ResourceVersion
		case !apierrors.IsNotFound(err):
			return // a failed read changes nothing and says nothing
		}
		w.rec.add(w.id, input{Kind: opGet, Key: key}, call, out)
	case p < 45:
		list, err := cms.List(opCtx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return // a failed read changes nothing and says nothing
		}
		seen := map[string]corev1.ConfigMap{}
		for _, cm := range list.Items {
			seen[cm.Name] = cm
		}
		ret := w.rec.now()
		for _, k := range w.keys {
			out := output{}
			if cm, ok := seen[k]; ok {
				out.Exists, out.Value, out.RV = true, cm.Data["v"], cm.ResourceVersion
				w.known[k] = cm.ResourceVersion
			}
			w.rec.addAt(w.id, input{Kind: opGet, Key: k}, call, ret, out)
		}
	case p < 60:
		cm, err := cms.Create(opCtx, configMap(key, "", value), metav1.CreateOptions{})
		out := outcome(err)
		if err == nil {
			out.RV = cm.ResourceVersion
			w.known[key] = cm.ResourceVersion
		}
		record(input{Kind: opCreate, Key: key, Value: value}, err, out)
	case p < 88:
		rv := w.known[key]
		if rv == "" {
			rv = "1"
		}
		got, err := cms.Update(opCtx, configMap(key, rv, value), metav1.UpdateOptions{})
		out := outcome(err)
		if err == nil {
			out.RV = got.ResourceVersion
			w.known[key] = got.ResourceVersion
		}
		record(input{Kind: opUpdate, Key: key, Value: value, ExpectRV: rv}, err, out)
	default:
		rv := w.known[key]
		if rv == "" {
			rv = "1"
		}
		err := cms.Delete(opCtx, key, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		record(input{Kind: opDelete, Key: key, ExpectRV: rv}, err, outcome(err))
	}
}

// outcome classifies an error: the answers that say what happened, and
// everything else as unknown.
func outcome(err error) output {
	switch {
	case err == nil:
		return output{}
	case apierrors.IsAlreadyExists(err):
		return output{Result: resExists}
	case apierrors.IsNotFound(err):
		return output{Result: resNotFound}
	case apierrors.IsConflict(err):
		return output{Result: resConflict}
	}
	return output{Unknown: true}
}

// notSent tells errors where the request never reached a server, so it had
// no effect: such operations are left out of the history. (client-go
// retries a write only when its earlier attempt was refused the same way,
// or answered 503 with Retry-After, which k3ha sends only for a write that
// was not applied.)
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &opErr) && opErr.Op == "dial") ||
		strings.Contains(err.Error(), "connection refused")
}
