package robustness

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// event is one change a watcher saw.
type event struct {
	Type  string `json:"type"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	RV    int64  `json:"rv"`
}

// watcher follows the ConfigMaps through one server for the whole run,
// resuming from the last resourceVersion it saw whenever its watch ends,
// and listing again only when told that version is gone (410).
type watcher struct {
	server string
	client kubernetes.Interface
	mu     sync.Mutex
	events []event
	// relists are the versions a relist jumped from and to: changes in
	// between may be missing from events, as the watch said.
	relists [][2]int64
	start   int64 // the version the first watch began at
	last    int64
	errs    []string
}

func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		if w.start == 0 || w.gone() {
			if err := w.list(ctx); err != nil {
				w.note("list: %v", err)
				sleep(ctx, 200*time.Millisecond)
				continue
			}
		}
		if err := w.watch(ctx); err != nil && ctx.Err() == nil {
			w.note("watch: %v", err)
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

// gone is set by watch when the server answered 410 for the version.
func (w *watcher) gone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last < 0
}

func (w *watcher) list(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := w.client.CoreV1().ConfigMaps(namespace).List(lctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start == 0 {
		w.start = rv
	} else {
		w.relists = append(w.relists, [2]int64{-w.last, rv})
	}
	w.last = rv
	return nil
}

func (w *watcher) watch(ctx context.Context) error {
	w.mu.Lock()
	from := w.last
	w.mu.Unlock()
	wi, err := w.client.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{
		LabelSelector: selector, ResourceVersion: strconv.FormatInt(from, 10), AllowWatchBookmarks: true,
	})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			w.expire()
		}
		return err
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-wi.ResultChan():
			if !ok {
				return fmt.Errorf("watch from %d closed", from)
			}
			if e.Type == watch.Error {
				if st, ok := e.Object.(*metav1.Status); ok && (st.Code == 410) {
					w.expire()
				}
				return fmt.Errorf("watch error: %v", e.Object)
			}
			cm, ok := e.Object.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			rv, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
			if err != nil {
				return err
			}
			w.mu.Lock()
			if e.Type != watch.Bookmark {
				w.events = append(w.events, event{Type: string(e.Type), Key: cm.Name, Value: cm.Data["v"], RV: rv})
			}
			w.last = rv
			w.mu.Unlock()
		}
	}
}

// expire marks the version gone: the next round lists again.
func (w *watcher) expire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last > 0 {
		w.last = -w.last
	}
}

func (w *watcher) note(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) < 50 {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
