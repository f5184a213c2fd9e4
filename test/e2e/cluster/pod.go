package cluster

import "fmt"

// PodYAML is a pod of the test image (already imported: never pulled) in
// namespace ns, pinned to node, with labels given as YAML flow-map items
// ("app: web, role: x"; may be empty), running the test app with args as
// YAML flow-sequence items (`"serve", ":8080"`). Port 8080 is named http.
func PodYAML(ns, name, node, labels, image, args string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  namespace: %s
  name: %s
  labels: {%s}
spec:
  nodeName: %s
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
    args: [%s]
    ports: [{name: http, containerPort: 8080}]
`, ns, name, labels, node, image, args)
}

// WebIngressYAML is a Service web (port 80 to the pods labelled app=web,
// port 8080) and an Ingress sending host's requests to it, in default.
func WebIngressYAML(host string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: %s
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`, host)
}
