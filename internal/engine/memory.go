package engine

// measureStart notes the shuffle bytes an interval starts with; the runner
// calls it when the interval starts.
func (c *Engine) measureStart() {
	c.blocks.ResetShufflePeak()
	c.admission.StartShuffle = c.blocks.Stats().ShuffleBytes
}

// measureEnd records the interval's measurement; the runner calls it when
// the interval's outputs have run, before the interval is forgotten.
func (c *Engine) measureEnd(inputBytes int64) {
	peak := c.blocks.ResetShufflePeak()
	c.admission.Measured(inputBytes, max(0, peak-c.admission.StartShuffle), c.blocks.Stats().MaxBytes)
}

// resizeInput sets the input share for the next interval; the runner calls
// it once the interval is forgotten, when what the store still holds is
// what the next interval starts with.
func (c *Engine) resizeInput() {
	st := c.blocks.Stats()
	c.blocks.SetMaxInputBytes(c.admission.InputShare(st.MaxBytes, st.StateBytes+st.ShuffleBytes))
}
