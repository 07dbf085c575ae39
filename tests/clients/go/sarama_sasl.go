// Produces and consumes over SASL_SSL (or is refused), with sarama.
// usage: sarama_sasl roundtrip|refused BOOTSTRAP TOPIC CA_PEM MECHANISM USER PASSWORD
// MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. sarama ships no SCRAM client: it asks the
// application for one (Net.SASL.SCRAMClientGeneratorFunc); scramClient below is that client.
// roundtrip prints {"produced": n, "consumed": n, "values_match": bool}; refused prints
// {"refused": bool, "error": "..."}. Exits 1 otherwise.
package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// scramClient is an RFC 5802 client (no channel binding) for sarama's SCRAMClient interface.
type scramClient struct {
	newHash         func() hash.Hash
	user, password  string
	clientFirstBare string
	serverSignature []byte
	step            int
}

func (c *scramClient) hmac(key, data []byte) []byte {
	m := hmac.New(c.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

// pbkdf2 with one block: SCRAM's Hi() yields exactly one hash length.
func (c *scramClient) hi(password, salt []byte, iterations int) []byte {
	u := c.hmac(password, append(append([]byte{}, salt...), 0, 0, 0, 1))
	out := append([]byte{}, u...)
	for i := 1; i < iterations; i++ {
		u = c.hmac(password, u)
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

func (c *scramClient) Begin(user, password, authzID string) error {
	c.user, c.password = user, password
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		nonce := make([]byte, 18)
		if _, err := rand.Read(nonce); err != nil {
			return "", err
		}
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.clientFirstBare = "n=" + name + ",r=" + base64.StdEncoding.EncodeToString(nonce)
		return "n,," + c.clientFirstBare, nil
	case 2:
		fields := map[string]string{}
		for _, f := range strings.Split(challenge, ",") {
			if len(f) > 2 {
				fields[f[:1]] = f[2:]
			}
		}
		salt, err := base64.StdEncoding.DecodeString(fields["s"])
		if err != nil {
			return "", err
		}
		iterations, err := strconv.Atoi(fields["i"])
		if err != nil {
			return "", err
		}
		salted := c.hi([]byte(c.password), salt, iterations)
		withoutProof := "c=biws,r=" + fields["r"]
		authMessage := []byte(c.clientFirstBare + "," + challenge + "," + withoutProof)
		clientKey := c.hmac(salted, []byte("Client Key"))
		h := c.newHash()
		h.Write(clientKey)
		signature := c.hmac(h.Sum(nil), authMessage)
		for i := range clientKey {
			clientKey[i] ^= signature[i]
		}
		c.serverSignature = c.hmac(c.hmac(salted, []byte("Server Key")), authMessage)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(clientKey), nil
	default:
		if challenge != "v="+base64.StdEncoding.EncodeToString(c.serverSignature) {
			return "", errors.New("server signature does not verify: " + challenge)
		}
		return "", nil
	}
}

func (c *scramClient) Done() bool { return c.step >= 3 }

func main() {
	mode, bootstrap, topic, caFile, mechanism, user, password := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7]
	caPem, err := os.ReadFile(caFile)
	if err != nil {
		fail("ca: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPem)

	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.Net.TLS.Enable = true
	config.Net.TLS.Config = &tls.Config{RootCAs: roots, ServerName: "localhost"}
	config.Net.SASL.Enable = true
	config.Net.SASL.Handshake = true
	config.Net.SASL.User = user
	config.Net.SASL.Password = password
	config.Net.SASL.Mechanism = sarama.SASLMechanism(mechanism)
	switch mechanism {
	case "SCRAM-SHA-256":
		config.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{newHash: sha256.New} }
	case "SCRAM-SHA-512":
		config.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{newHash: sha512.New} }
	}
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll

	if mode == "refused" {
		config.Metadata.Retry.Max = 0
		client, err := sarama.NewClient([]string{bootstrap}, config)
		report := map[string]interface{}{"refused": false, "error": "connected"}
		if err != nil {
			// The broker's SaslAuthenticate answer, SASL_AUTHENTICATION_FAILED, as sarama returns it.
			report = map[string]interface{}{"refused": err == sarama.ErrSASLAuthenticationFailed, "error": err.Error()}
		} else {
			client.Close()
		}
		out, _ := json.Marshal(report)
		fmt.Println(string(out))
		if report["refused"] != true {
			os.Exit(1)
		}
		return
	}

	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	if err != nil {
		fail("producer: %v", err)
	}
	values := make([]string, 100)
	for i := range values {
		values[i] = fmt.Sprintf("sasl-%d", i)
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
