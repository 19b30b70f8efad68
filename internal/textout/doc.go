// Package textout writes a stream's intervals as folders of text files
// (Stream.SaveAsTextFiles), and makes each folder appear once, whole: the
// commit protocols of a local folder (Folder: written under a temporary
// name, renamed into place) and of a store without rename (Objects: parts
// written in place, a marker object written last).
//
// It knows the engine only for the output context's facts (engine.Rerun,
// engine.Epoch, engine.Committing); the typed stream, the job that writes
// the parts and the store's opening are the caller's.
package textout

// SuccessName is the marker of a complete interval folder.
const SuccessName = "_SUCCESS"
