package addons

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// decode splits a manifest (multi-document YAML, or JSON) into objects.
// A List's items count as objects of their own. Empty documents are
// skipped; anything else without apiVersion, kind and name is an error
// naming the document.
func decode(content []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(content), 4096)
	for doc := 1; ; doc++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", doc, err)
			}
			for i := range list.Items {
				item := &list.Items[i]
				if err := check(item); err != nil {
					return nil, fmt.Errorf("document %d, item %d: %w", doc, i+1, err)
				}
				out = append(out, item)
			}
			continue
		}
		if err := check(u); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		out = append(out, u)
	}
}

func check(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if u.GetName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("object without %s", strings.Join(missing, ", "))
	}
	return nil
}

// applyOrder puts what other objects depend on first: namespaces and CRDs,
// then everything else in file order.
func applyOrder(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	first := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition"
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, u := range objs {
		if first(u) {
			out = append(out, u)
		}
	}
	for _, u := range objs {
		if !first(u) {
			out = append(out, u)
		}
	}
	return out
}
