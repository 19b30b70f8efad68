// Package kafka reads and writes Apache Kafka for dstream's direct stream
// and its sink: the master asks for each partition's latest offsets and
// fixes every interval's offset ranges (Source.Plan); a task fetches
// exactly one range, wherever it runs (Source.Fetch); an output writes an
// interval's partition once, whatever its retries (Writer).
//
// Reading is Spark's direct approach (DirectKafkaInputDStream): no
// receiver, no consumer group membership, no copy of the records in the
// job. The log is the replayable input, the ranges are the interval's
// input, and a range fetched twice gives the same records, so a lost
// partition or an interval run again after a restart reads what the first
// attempt read.
//
// Writing is exactly once per interval and output partition, by Kafka
// transactions: see Writer.
//
// # Why franz-go
//
// github.com/twmb/franz-go (kgo, with kadm for the admin calls and kfake,
// an in-process cluster speaking the real protocol, for tests and the
// demo) is a pure Go client, actively maintained, that implements the
// whole protocol, transactions (KIP-98, KIP-447, KIP-890) included, and
// lets a consumer be assigned exact partitions at exact offsets with no
// group. The alternatives: confluent-kafka-go needs cgo and librdkafka;
// segmentio/kafka-go has no transactions, which the sink needs; Sarama's
// transactional producer is newer and its consumer is built around groups.
package kafka
