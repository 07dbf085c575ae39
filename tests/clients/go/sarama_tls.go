// Produces and consumes over SSL with a client certificate (sarama).
// usage: sarama_tls BOOTSTRAP TOPIC CA_PEM CERT_PEM KEY_PEM
// Prints one JSON line {"produced": n, "consumed": n, "values_match": bool}; exits 1 when anything fails.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	bootstrap, topic, caFile, certFile, keyFile := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	caPem, err := os.ReadFile(caFile)
	if err != nil {
		fail("ca: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPem)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail("client certificate: %v", err)
	}

	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.Net.TLS.Enable = true
	config.Net.TLS.Config = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: "localhost"}
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll

	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	if err != nil {
		fail("producer: %v", err)
	}
	values := make([]string, 100)
	for i := range values {
		values[i] = fmt.Sprintf("tls-%d", i)
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(values[i])}); err != nil {
			fail("send: %v", err)
		}
	}
	producer.Close()

	consumer, err := sarama.NewConsumer([]string{bootstrap}, config)
	if err != nil {
		fail("consumer: %v", err)
	}
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail("consume: %v", err)
	}
	consumed := []string{}
	timeout := time.After(60 * time.Second)
loop:
	for len(consumed) < len(values) {
		select {
		case m := <-pc.Messages():
			consumed = append(consumed, string(m.Value))
		case <-timeout:
			break loop
		}
	}
	pc.Close()
	consumer.Close()
	match := len(consumed) == len(values)
	for i := 0; match && i < len(values); i++ {
		match = consumed[i] == values[i]
	}
	out, _ := json.Marshal(map[string]interface{}{"produced": len(values), "consumed": len(consumed), "values_match": match})
	fmt.Println(string(out))
	if !match {
		os.Exit(1)
	}
}
