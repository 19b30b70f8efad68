package ui

import "net/http"

// Receiver is one receiver, in GET /api/v1/receivers (Spark's streaming
// receivers endpoint, where its fields fit).
type Receiver struct {
	// StreamID ("streamId") and StreamName ("streamName") name its input
	// stream and the receiver ("socket 127.0.0.1:9999").
	StreamID   int32  `json:"streamId"`
	StreamName string `json:"streamName"`
	// Address ("address") is where it takes records in (a socket's
	// address); null when it has none.
	Address *string `json:"address"`
	// Worker ("worker") is the worker running it; null for this process.
	Worker *string `json:"worker"`
	// IsActive ("isActive") says it is receiving now.
	IsActive bool `json:"isActive"`
	// Records ("records") counts the records it took in (on a worker:
	// stored there and on one other, and reported).
	Records int64 `json:"records"`
	// DroppedRecords ("droppedRecords") counts the records it dropped as
	// malformed (a socket's line over the source's MaxRecordBytes, 16 MiB
	// by default), each with a warning in the log.
	DroppedRecords int64 `json:"droppedRecords"`
	// LastError ("lastError") and LastErrorTime ("lastErrorTime", RFC
	// 3339) are its latest failure; null without one.
	LastError     *string `json:"lastError"`
	LastErrorTime *string `json:"lastErrorTime"`
}

// receivers serves GET /api/v1/receivers.
func (s *Server) receivers(w http.ResponseWriter, r *http.Request) {
	rs := s.sctx.Receivers()
	out := make([]Receiver, len(rs))
	for i, ri := range rs {
		out[i] = Receiver{StreamID: ri.Stream, StreamName: ri.Name, IsActive: ri.Active, Records: ri.Records, DroppedRecords: ri.Dropped}
		if ri.Address != "" {
			out[i].Address = &rs[i].Address
		}
		if ri.Worker != "" {
			out[i].Worker = &rs[i].Worker
		}
		if ri.LastError != "" {
			ts := stamp(ri.LastErrorTime)
			out[i].LastError, out[i].LastErrorTime = &rs[i].LastError, &ts
		}
	}
	writeJSON(w, http.StatusOK, out)
}
