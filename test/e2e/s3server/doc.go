// Package s3server pins the S3 server the end-to-end tests run
// (github.com/versity/versitygw, a gateway serving a directory over S3) in
// a module of its own, away from k3ha's dependencies.
package s3server
