package block

import (
	"os"
	"path/filepath"
)

// Spilling. With Options.SpillDir and Encode, a shuffle output the store
// must evict goes to a file instead of away: a map output that would have
// been recomputed from lineage is read back from the disk. Only shuffle
// outputs spill: cached partitions are cheaper to recompute than to write,
// and pinned blocks are never evicted. Writing happens under the store's
// lock (evictions are rare and the put that evicts waits for the room
// anyway); reading a spilled block does not hold it.

// spillLocked writes victim (already unlinked) to the disk and reports
// whether it did; s.mu is held.
func (s *Store) spillLocked(victim *entry) bool {
	if s.opts.SpillDir == "" || s.opts.Encode == nil || victim.class != Shuffle {
		return false
	}
	b, err := s.opts.Encode(victim.value)
	if err != nil || s.spilledBytes+int64(len(b)) > s.opts.MaxSpillBytes {
		return false
	}
	if err := os.MkdirAll(s.opts.SpillDir, 0o700); err != nil {
		return false
	}
	// Written aside and renamed into place: a reader (which does not hold
	// the lock) sees the old file or the new one, never half of one.
	file := s.spillFile(victim.key)
	if err := os.WriteFile(file+".tmp", b, 0o600); err != nil || os.Rename(file+".tmp", file) != nil {
		_ = os.Remove(file + ".tmp")
		return false
	}
	s.spilled[victim.key] = int64(len(b))
	s.indexLocked(victim.key) // removeLocked unindexed it
	s.spilledBytes += int64(len(b))
	s.spills++
	return true
}

// unspillLocked deletes key's file, if it has one, and reports whether it
// had; s.mu is held.
func (s *Store) unspillLocked(key string) bool {
	n, ok := s.spilled[key]
	if !ok {
		return false
	}
	delete(s.spilled, key)
	if _, ok := s.blocks[key]; !ok {
		s.unindexLocked(key)
	}
	s.spilledBytes -= n
	_ = os.Remove(s.spillFile(key))
	return true
}

// readSpilled reads key's file. A block removed meanwhile is missing.
func (s *Store) readSpilled(key string) (any, bool) {
	b, err := os.ReadFile(s.spillFile(key))
	if err != nil {
		return nil, false
	}
	return Encoded(b), true
}

// spillFile is where key's block lives on disk. Keys are the engine's
// ("shuffle_1_2_3_4_5"); anything else is kept to a base name.
func (s *Store) spillFile(key string) string {
	return filepath.Join(s.opts.SpillDir, filepath.Base(filepath.Clean("/"+key))+".blk")
}

// Close deletes the spill files. The store is not to be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.spilled {
		s.unspillLocked(k)
	}
	if s.opts.SpillDir != "" {
		return os.RemoveAll(s.opts.SpillDir)
	}
	return nil
}
