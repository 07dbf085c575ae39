// Produces and consumes over SSL with a client certificate (kafkajs).
// usage: node kafkajs_tls.js BOOTSTRAP TOPIC CA_PEM CERT_PEM KEY_PEM
// Prints one JSON line {"produced": n, "consumed": n, "values_match": bool}; exits 1 when anything fails.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, ca, cert, key] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: 'kafkajs-tls',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  ssl: { ca: [fs.readFileSync(ca, 'utf8')], cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8'), servername: 'localhost' },
});

(async () => {
  const values = Array.from({ length: 100 }, (_, i) => `tls-${i}`);
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
  const report = { produced: values.length, consumed: consumed.length, values_match: JSON.stringify(consumed) === JSON.stringify(values) };
  console.log(JSON.stringify(report));
  process.exit(report.values_match ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
