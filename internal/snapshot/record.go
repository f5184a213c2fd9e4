package snapshot

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"

	"github.com/k3ha/k3ha/internal/crds"
)

// Resource is the ETCDSnapshotFile resource: one per snapshot, local or on S3.
var Resource = schema.GroupVersionResource{Group: crds.Group, Version: "v1", Resource: "etcdsnapshotfiles"}

// CRD defines ETCDSnapshotFile.
func CRD() *apiextv1.CustomResourceDefinition {
	return crds.ClusterScoped("ETCDSnapshotFile", "etcdsnapshotfiles",
		crds.Column{Name: "SnapshotName", Type: "string", JSONPath: ".spec.snapshotName"},
		crds.Column{Name: "Node", Type: "string", JSONPath: ".spec.nodeName"},
		crds.Column{Name: "Location", Type: "string", JSONPath: ".spec.location"},
		crds.Column{Name: "Size", Type: "integer", JSONPath: ".status.size"},
		crds.Column{Name: "Verified", Type: "boolean", JSONPath: ".status.verified"},
		crds.Column{Name: "CreationTime", Type: "date", JSONPath: ".status.creationTime"})
}

// Records keeps the ETCDSnapshotFile objects and their Events.
type Records struct {
	Client   dynamic.Interface
	Recorder record.EventRecorder
}

type recordSpec struct {
	SnapshotName string    `json:"snapshotName"`
	NodeName     string    `json:"nodeName"`
	Location     string    `json:"location"`
	Kind         string    `json:"kind"`
	S3           *S3Object `json:"s3,omitempty"`
}

type recordStatus struct {
	ReadyToUse   bool         `json:"readyToUse"`
	Verified     bool         `json:"verified"`
	Size         int64        `json:"size"`
	CreationTime metav1.Time  `json:"creationTime"`
	Revision     int64        `json:"revision,omitempty"`
	Keys         int64        `json:"keys,omitempty"`
	Check        string       `json:"check,omitempty"`
	Error        *recordError `json:"error,omitempty"`
}

type recordError struct {
	Time    metav1.Time `json:"time"`
	Message string      `json:"message"`
}

// objectName is a record's name: where the copy is, and the file's name.
func objectName(info Info) string {
	where := "local"
	if strings.HasPrefix(info.Location, "s3://") {
		where = "s3"
	}
	b := []byte(strings.ToLower(where + "-" + info.Name))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}

// Save writes the record of info and an Event: created, or failed with
// its reason.
func (r *Records) Save(ctx context.Context, info Info) error {
	if r == nil || r.Client == nil {
		return nil
	}
	st := recordStatus{ReadyToUse: info.Verified && info.Error == "", Verified: info.Verified, Size: info.Size,
		CreationTime: metav1.NewTime(info.Created), Revision: info.Revision, Keys: info.Keys, Check: info.VerifyLog}
	failure := info.Error
	if info.S3 != nil && info.S3.Error != "" && strings.HasPrefix(info.Location, "s3://") {
		failure = info.S3.Error
		st.ReadyToUse = false
	}
	if failure != "" {
		st.Error = &recordError{Time: metav1.Now(), Message: failure}
	}
	spec := recordSpec{SnapshotName: info.Name, NodeName: info.Node, Location: info.Location, Kind: info.Kind, S3: info.S3}
	obj, err := toObject(objectName(info), spec)
	if err != nil {
		return err
	}
	res := r.Client.Resource(Resource)
	cur, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if cur, err = res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("record snapshot %s: %w", info.Name, err)
		}
	case err != nil:
		return fmt.Errorf("record snapshot %s: %w", info.Name, err)
	default:
		cur.Object["spec"] = obj.Object["spec"]
		if cur, err = res.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("record snapshot %s: %w", info.Name, err)
		}
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return err
	}
	cur.Object["status"] = status
	if cur, err = res.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("record snapshot %s: %w", info.Name, err)
	}
	if r.Recorder != nil {
		if failure != "" {
			r.Recorder.Eventf(cur, corev1.EventTypeWarning, "ETCDSnapshotFailed", "snapshot %s on %s failed: %s", info.Name, info.Node, failure)
		} else {
			r.Recorder.Eventf(cur, corev1.EventTypeNormal, "ETCDSnapshotCreated", "snapshot %s saved on %s (%s)", info.Name, info.Node, info.VerifyLog)
		}
	}
	return nil
}

// Delete removes the record of info.
func (r *Records) Delete(ctx context.Context, info Info) error {
	if r == nil || r.Client == nil {
		return nil
	}
	err := r.Client.Resource(Resource).Delete(ctx, objectName(info), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// List reads every server's records.
func (r *Records) List(ctx context.Context) ([]Info, error) {
	if r == nil || r.Client == nil {
		return nil, nil
	}
	list, err := r.Client.Resource(Resource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, u := range list.Items {
		var b struct {
			Spec   recordSpec   `json:"spec"`
			Status recordStatus `json:"status"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			continue
		}
		info := Info{Name: b.Spec.SnapshotName, Node: b.Spec.NodeName, Location: b.Spec.Location, Kind: b.Spec.Kind, S3: b.Spec.S3,
			Size: b.Status.Size, Created: b.Status.CreationTime.Time, Verified: b.Status.Verified, Revision: b.Status.Revision,
			Keys: b.Status.Keys, VerifyLog: b.Status.Check}
		if b.Status.Error != nil {
			info.Error = b.Status.Error.Message
		}
		out = append(out, info)
	}
	return out, nil
}

func toObject(name string, spec recordSpec) (*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
		Spec recordSpec `json:"spec"`
	}{spec})
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetAPIVersion(Resource.GroupVersion().String())
	u.SetKind("ETCDSnapshotFile")
	u.SetName(name)
	return u, nil
}
