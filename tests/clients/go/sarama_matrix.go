// The client matrix for sarama 1.22.1 (Debian's golang-github-shopify-sarama-dev) against Moldau.
// Built offline in GOPATH mode (GOPATH=/usr/share/gocode GO111MODULE=off).
// Usage: sarama_matrix BOOTSTRAP PREFIX. Prints one JSON object of named checks and facts.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

var brokers []string

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	// sarama's default speaks the pre-0.11 message format, which Moldau (like Kafka 4) does not serve.
	c.Version = sarama.V2_1_0_0
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Heartbeat.Interval = time.Second
	return c
}

func keyOf(i int) sarama.Encoder {
	switch i % 4 {
	case 0:
		return nil
	case 1:
		return sarama.ByteEncoder([]byte{})
	case 2:
		return sarama.ByteEncoder([]byte{0, 255, byte(i), 0x80})
	}
	return sarama.StringEncoder(fmt.Sprintf("key-%d", i))
}

func keyBytes(i int) []byte {
	if k := keyOf(i); k != nil {
		b, _ := k.Encode()
		return b
	}
	return nil
}

func valueOf(i int) string {
	return fmt.Sprintf("value-%d-%s", i, string(bytes.Repeat([]byte("z"), i%100)))
}

func headersOf(i int) []sarama.RecordHeader {
	if i%3 == 0 {
		return nil
	}
	return []sarama.RecordHeader{{Key: []byte("h1"), Value: []byte{byte(i)}}, {Key: []byte("h2"), Value: []byte("x")}}
}

type groupHandler struct {
	mu       sync.Mutex
	seenMu   *sync.Mutex // guards seen, which two members of one group share
	seen     map[string]bool
	claims   int
	claimsAt time.Time
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.claims = len(s.Claims()[groupTopic])
	h.claimsAt = time.Now()
	h.mu.Unlock()
	return nil
}
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seenMu.Lock()
		h.seen[string(m.Value)] = true
		h.seenMu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

var groupTopic string

func member(group string, h *groupHandler) (sarama.ConsumerGroup, context.CancelFunc) {
	cg, err := sarama.NewConsumerGroup(brokers, group, config())
	if err != nil {
		fail("consumer group: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{groupTopic}, h); err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return cg, cancel
}

func wait(d time.Duration, done func() bool) {
	for end := time.Now().Add(d); time.Now().Before(end) && !done(); {
		time.Sleep(50 * time.Millisecond)
	}
}

func main() {
	brokers = []string{os.Args[1]}
	prefix := os.Args[2]
	checks := map[string]bool{}
	facts := map[string]interface{}{}

	admin, err := sarama.NewClusterAdmin(brokers, config())
	if err != nil {
		fail("admin: %v", err)
	}
	adminTopic := prefix + "-admin"
	if err := admin.CreateTopic(adminTopic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		fail("create: %v", err)
	}
	topics, _ := admin.ListTopics()
	_, checks["admin_listed"] = topics[adminTopic]
	described, err := admin.DescribeTopics([]string{adminTopic})
	checks["admin_described_3_partitions"] = err == nil && len(described) == 1 && len(described[0].Partitions) == 3
	checks["admin_deleted"] = admin.DeleteTopic(adminTopic) == nil
	topics, _ = admin.ListTopics()
	_, still := topics[adminTopic]
	checks["admin_deleted"] = checks["admin_deleted"] && !still

	client, err := sarama.NewClient(brokers, config())
	if err != nil {
		fail("client: %v", err)
	}
	baseTime := time.Now().Add(-100 * time.Second).Truncate(time.Millisecond)
	type run struct {
		codec      sarama.CompressionCodec
		name       string
		acks       sarama.RequiredAcks
		idempotent bool
	}
	runs := []run{
		{sarama.CompressionNone, "none", sarama.WaitForAll, true},
		{sarama.CompressionGZIP, "gzip", sarama.WaitForAll, false},
		{sarama.CompressionSnappy, "snappy", sarama.WaitForAll, false},
		{sarama.CompressionLZ4, "lz4", sarama.WaitForAll, false},
		{sarama.CompressionZSTD, "zstd", sarama.WaitForAll, false},
		{sarama.CompressionGZIP, "gzip", sarama.WaitForLocal, false},
		{sarama.CompressionNone, "none", sarama.NoResponse, false},
	}
	for _, r := range runs {
		topic := fmt.Sprintf("%s-%s-%d", prefix, r.name, r.acks)
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
			fail("create %s: %v", topic, err)
		}
		c := config()
		c.Producer.Compression = r.codec
		c.Producer.RequiredAcks = r.acks
		if r.idempotent {
			c.Producer.Idempotent = true
			c.Net.MaxOpenRequests = 1
		}
		if r.acks == sarama.NoResponse {
			c.Producer.Return.Successes = false
		}
		producer, err := sarama.NewAsyncProducer(brokers, c)
		if err != nil {
			fail("producer: %v", err)
		}
		go func() {
			for range producer.Successes() {
			}
		}()
		errs := 0
		go func() {
			for range producer.Errors() {
				errs++
			}
		}()
		for i := 0; i < 5000; i++ {
			producer.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 3), Key: keyOf(i), Value: sarama.StringEncoder(valueOf(i)),
				Headers: headersOf(i), Timestamp: baseTime.Add(time.Duration(i) * time.Millisecond)}
		}
		producer.Close()

		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			fail("consumer: %v", err)
		}
		seen := map[string]*sarama.ConsumerMessage{}
		var mu sync.Mutex
		for p := int32(0); p < 3; p++ {
			pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				fail("consume: %v", err)
			}
			go func() {
				for m := range pc.Messages() {
					mu.Lock()
					seen[string(m.Value)] = m
					mu.Unlock()
				}
			}()
		}
		wait(30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 5000 })
		consumer.Close()
		ok := len(seen) == 5000 && errs == 0
		for i := 0; ok && i < 5000; i++ {
			m := seen[valueOf(i)]
			want := headersOf(i)
			ok = m != nil && bytes.Equal(m.Key, keyBytes(i)) && (m.Key == nil) == (keyBytes(i) == nil) &&
				m.Timestamp.Equal(baseTime.Add(time.Duration(i)*time.Millisecond)) && len(m.Headers) == len(want)
			for j := 0; ok && j < len(want); j++ {
				ok = bytes.Equal(m.Headers[j].Key, want[j].Key) && bytes.Equal(m.Headers[j].Value, want[j].Value)
			}
		}
		name := fmt.Sprintf("records_%s_acks_%d", r.name, r.acks)
		if r.idempotent {
			name += "_idempotent"
			offset, err := client.GetOffset(topic, 1, baseTime.Add(3000*time.Millisecond).UnixNano()/1e6)
			checks["offsets_for_times"] = err == nil && offset == 1000
			facts["offsets_for_times"] = fmt.Sprint(offset, err)
		}
		checks[name] = ok
	}

	// A group of two splits a 4-partition topic and commits; one leaves and the other takes over
	// before the session timeout; a new member resumes exactly at the committed offsets.
	groupTopic = prefix + "-group"
	group := prefix + "-g"
	if err := admin.CreateTopic(groupTopic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false); err != nil {
		fail("create: %v", err)
	}
	producer, err := sarama.NewSyncProducer(brokers, config())
	if err != nil {
		fail("producer: %v", err)
	}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: groupTopic, Partition: int32(i % 4), Value: sarama.StringEncoder(fmt.Sprintf("g%d", i))}); err != nil {
				fail("send: %v", err)
			}
		}
	}
	send(0, 200)
	shared := map[string]bool{}
	sharedMu := &sync.Mutex{}
	ha := &groupHandler{seen: shared, seenMu: sharedMu}
	hb := &groupHandler{seen: shared, seenMu: sharedMu}
	a, cancelA := member(group, ha)
	b, cancelB := member(group, hb)
	count := func() int { sharedMu.Lock(); defer sharedMu.Unlock(); return len(shared) }
	wait(60*time.Second, func() bool {
		ha.mu.Lock()
		ca := ha.claims
		ha.mu.Unlock()
		hb.mu.Lock()
		cb := hb.claims
		hb.mu.Unlock()
		return ca > 0 && cb > 0 && ca+cb == 4 && count() == 200
	})
	checks["group_split"] = ha.claims > 0 && hb.claims > 0 && ha.claims+hb.claims == 4
	checks["group_consumed_all"] = count() == 200
	time.Sleep(500 * time.Millisecond)
	left := time.Now()
	cancelB()
	b.Close()
	wait(20*time.Second, func() bool { ha.mu.Lock(); defer ha.mu.Unlock(); return ha.claims == 4 && ha.claimsAt.After(left) })
	facts["leave_rebalance_s"] = ha.claimsAt.Sub(left).Seconds()
	checks["leave_rebalances_fast"] = ha.claims == 4 && ha.claimsAt.After(left) && ha.claimsAt.Sub(left) < 5*time.Second
	cancelA()
	a.Close()

	send(200, 210)
	producer.Close()
	fresh := map[string]bool{}
	freshMu := &sync.Mutex{}
	hc := &groupHandler{seen: fresh, seenMu: freshMu}
	c, cancelC := member(group, hc)
	wait(30*time.Second, func() bool { freshMu.Lock(); defer freshMu.Unlock(); return len(fresh) >= 10 })
	time.Sleep(500 * time.Millisecond)
	freshMu.Lock()
	exact := len(fresh) == 10
	for i := 200; i < 210; i++ {
		exact = exact && fresh[fmt.Sprintf("g%d", i)]
	}
	freshMu.Unlock()
	checks["new_member_resumes_exactly"] = exact
	cancelC()
	c.Close()
	client.Close()
	admin.Close()

	out, _ := json.Marshal(map[string]interface{}{"checks": checks, "facts": facts})
	fmt.Println(string(out))
}
