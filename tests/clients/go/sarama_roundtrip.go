// sarama 1.22.1 (Debian's golang-github-shopify-sarama-dev) against Moldau: admin, sync producer,
// consumer group. Built offline in GOPATH mode (GOPATH=/usr/share/gocode GO111MODULE=off).
// Usage: sarama_roundtrip BOOTSTRAP TOPIC GROUP. Prints one JSON line; exits non-zero on failure.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type handler struct {
	mu   sync.Mutex
	seen map[string]string
	done chan struct{}
	once sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Key)] = string(m.Value)
		n := len(h.seen)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n == 100 {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3]
	config := sarama.NewConfig()
	// sarama's default speaks the pre-0.11 message format, which Moldau (like Kafka 4) does not serve.
	config.Version = sarama.V2_1_0_0
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond

	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config)
	if err != nil {
		fail("admin: %v", err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		fail("create topic: %v", err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		fail("list topics: %v", err)
	}
	_, listed := topics[topic]

	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	if err != nil {
		fail("producer: %v", err)
	}
	for i := 0; i < 100; i++ {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))}
		if _, _, err := producer.SendMessage(msg); err != nil {
			fail("send: %v", err)
		}
	}
	producer.Close()

	consumer, err := sarama.NewConsumerGroup([]string{bootstrap}, group, config)
	if err != nil {
		fail("consumer group: %v", err)
	}
	h := &handler{seen: map[string]string{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	go func() {
		for ctx.Err() == nil {
			if err := consumer.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "consume: %v\n", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		fail("timed out with %d messages", len(h.seen))
	}
	time.Sleep(500 * time.Millisecond) // let the offset manager commit
	cancel()
	consumer.Close()

	match := true
	for i := 0; i < 100; i++ {
		if h.seen[fmt.Sprintf("k%d", i)] != fmt.Sprintf("v%d", i) {
			match = false
		}
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		fail("offsets: %v", err)
	}
	committed := int64(0)
	for _, b := range offsets.Blocks[topic] {
		if b.Offset > 0 {
			committed += b.Offset
		}
	}
	admin.Close()
	out, _ := json.Marshal(map[string]interface{}{"listed": listed, "received": len(h.seen), "valuesMatch": match, "committed": committed})
	fmt.Println(string(out))
}
