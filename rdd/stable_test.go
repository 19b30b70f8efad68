package rdd_test

// stablePartitions pins the hash partitioner (see TestHashPartitionerIsStable).
var stablePartitions = []int{8, 15, 4, 11, 0, 2}
