// kafkajs 2.2.4 (pure JavaScript) against Moldau: admin, idempotent producer, consumer group.
// Usage: node kafkajs_roundtrip.js BOOTSTRAP TOPIC GROUP
// Prints one JSON line with what it saw; exits non-zero on failure.
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const [bootstrap, topic, group] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [bootstrap], logLevel: logLevel.NOTHING });

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  const listed = (await admin.listTopics()).includes(topic);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
  await producer.send({ topic, messages, acks: -1, compression: CompressionTypes.GZIP });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.size} messages`)), 30000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.set(message.key.toString(), message.value.toString());
        if (seen.size === 100) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect();

  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  await admin.disconnect();

  const valuesMatch = messages.every((m) => seen.get(m.key) === m.value);
  console.log(JSON.stringify({ listed, received: seen.size, valuesMatch, committed, groupListed: groups.includes(group) }));
}

main().catch((e) => { console.error(e); process.exit(1); });
