// Package clusterpb holds the Go code generated from the protobuf sources
// in proto/dstream/cluster/v1: cluster.proto, the Cluster service the
// master serves (Register, Heartbeat, Manifests, Program, AddBlock), and
// peer.proto, the Peer service every process serves (RunTask, FetchBucket,
// FetchBlock, PutBlock, StartReceiver, StopReceiver, SetReceiverRate), with
// their messages. Package cluster implements and calls both. Everything but
// this file is generated; do not edit it. To regenerate, from the
// repository root:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	cd proto && PATH="$(go env GOPATH)/bin:$PATH" go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate
//
// (buf runs the local plugins; no remote plugin is used.)
package clusterpb
