// Produces and consumes over SASL_SSL (or is refused), with kafkajs.
// usage: node kafkajs_sasl.js roundtrip|refused BOOTSTRAP TOPIC CA_PEM MECHANISM USER PASSWORD
// MECHANISM is kafkajs's name: plain, scram-sha-256, scram-sha-512.
// roundtrip prints {"produced": n, "consumed": n, "values_match": bool}; refused prints
// {"refused": bool, "error": "..."} (a KafkaJSSASLAuthenticationError is a refusal). Exits 1 otherwise.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [mode, bootstrap, topic, ca, mechanism, username, password] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: 'kafkajs-sasl',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  ssl: { ca: [fs.readFileSync(ca, 'utf8')], servername: 'localhost' },
  sasl: { mechanism, username, password },
  retry: { retries: mode === 'refused' ? 0 : 5 },
});

async function refused() {
  const producer = kafka.producer();
  try {
    await producer.connect();
    await producer.disconnect();
    return { refused: false, error: 'connected' };
  } catch (e) {
    return { refused: e.name === 'KafkaJSSASLAuthenticationError', error: `${e.name}: ${e.message}` };
  }
}

async function roundTrip() {
  const values = Array.from({ length: 100 }, (_, i) => `sasl-${i}`);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await admin.disconnect();

  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();

  const consumed = [];
  const consumer = kafka.consumer({ groupId: `${topic}-g`, sessionTimeout: 6000, heartbeatInterval: 1000, rebalanceTimeout: 10000, maxWaitTimeInMs: 250 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        consumed.push(message.value.toString());
        if (consumed.length === values.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return { produced: values.length, consumed: consumed.length, values_match: JSON.stringify(consumed) === JSON.stringify(values) };
}

(async () => {
  const report = mode === 'refused' ? await refused() : await roundTrip();
  console.log(JSON.stringify(report));
  process.exit(report.refused || report.values_match ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
