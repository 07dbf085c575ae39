// The client matrix for kafkajs 2.2.4 against Moldau.
// Usage: node kafkajs_matrix.js BOOTSTRAP PREFIX
// Prints one JSON object of named checks (true when they held) and facts.
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const [bootstrap, prefix] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kafkajs-matrix', brokers: [bootstrap], logLevel: logLevel.NOTHING });
const checks = {};
const facts = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const keyOf = (i) => [null, Buffer.alloc(0), Buffer.from([0, 255, i % 256, 0x80]), Buffer.from(`key-${i}`)][i % 4];
const valueOf = (i) => `value-${i}-${'z'.repeat(i % 100)}`;
const headersOf = (i) => (i % 3 === 0 ? {} : { h1: Buffer.from([i % 256]), h2: Buffer.from('x') });
const same = (a, b) => (a === null || b === null ? a === b : Buffer.compare(a, b) === 0);

async function readAll(topic, count) {
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 30000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.set(message.value.toString(), message);
        if (seen.size === count) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();
  return seen;
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();

  const adminTopic = `${prefix}-admin`;
  await admin.createTopics({ topics: [{ topic: adminTopic, numPartitions: 3, replicationFactor: 1 }] });
  checks.admin_listed = (await admin.listTopics()).includes(adminTopic);
  const meta = await admin.fetchTopicMetadata({ topics: [adminTopic] });
  checks.admin_described_3_partitions = meta.topics[0].partitions.length === 3;
  await admin.deleteTopics({ topics: [adminTopic] });
  checks.admin_deleted = !(await admin.listTopics()).includes(adminTopic);

  // kafkajs ships gzip; snappy, lz4 and zstd need codec packages that are not installed.
  const runs = [['none', -1, true], ['gzip', -1, false], ['gzip', 1, false], ['none', 0, false]];
  const baseTime = Date.now() - 100000;
  for (const [codec, acks, idempotent] of runs) {
    const topic = `${prefix}-${codec}-${acks}${idempotent ? '-idem' : ''}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
    const producer = kafka.producer(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {});
    await producer.connect();
    for (let start = 0; start < 5000; start += 500) {
      const messages = [];
      for (let i = start; i < start + 500; i++) {
        messages.push({ key: keyOf(i), value: valueOf(i), headers: headersOf(i), timestamp: String(baseTime + i), partition: i % 3 });
      }
      await producer.send({ topic, messages, acks, compression: codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None });
    }
    await producer.disconnect();
    const seen = await readAll(topic, 5000);
    let ok = seen.size === 5000;
    for (let i = 0; ok && i < 5000; i++) {
      const m = seen.get(valueOf(i));
      const h = headersOf(i);
      ok = m !== undefined && same(m.key, keyOf(i)) && m.timestamp === String(baseTime + i)
        && Object.keys(m.headers).length === Object.keys(h).length
        && Object.keys(h).every((k) => same(m.headers[k], h[k]));
    }
    checks[`records_${codec}_acks_${acks}${idempotent ? '_idempotent' : ''}`] = ok;
    if (idempotent) {
      const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, baseTime + 3000);
      checks.offsets_for_times = offsets.find((o) => o.partition === 1).offset === '1000';
    }
  }

  // A group of two splits a 4-partition topic and commits; one leaves and the other takes over
  // before the session timeout; a new member resumes exactly at the committed offsets.
  const groupTopic = `${prefix}-group`;
  const group = `${prefix}-g`;
  await admin.createTopics({ topics: [{ topic: groupTopic, numPartitions: 4, replicationFactor: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: groupTopic, acks: -1, messages: Array.from({ length: 200 }, (_, i) => ({ value: `g${i}`, partition: i % 4 })) });

  const assignments = {};
  const seen = new Set();
  const member = async (name) => {
    // kafkajs heartbeats from its fetch loop, so an idle member's fetch wait bounds how soon it hears of a rebalance.
    const c = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 1000, rebalanceTimeout: 10000, maxWaitTimeInMs: 250 });
    c.on(c.events.GROUP_JOIN, (e) => { assignments[name] = (e.payload.memberAssignment[groupTopic] || []).length; assignments[`${name}_at`] = Date.now(); });
    await c.connect();
    await c.subscribe({ topic: groupTopic, fromBeginning: true });
    await c.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => { seen.add(message.value.toString()); } });
    return c;
  };
  const a = await member('a');
  const b = await member('b');
  for (let i = 0; i < 600 && (seen.size < 200 || !(assignments.a > 0 && assignments.b > 0 && assignments.a + assignments.b === 4)); i++) await sleep(100);
  checks.group_split = assignments.a > 0 && assignments.b > 0 && assignments.a + assignments.b === 4;
  checks.group_consumed_all = seen.size === 200;
  await sleep(500);
  const left = Date.now();
  await b.disconnect();
  for (let i = 0; i < 200 && !(assignments.a === 4 && assignments.a_at > left); i++) await sleep(50);
  facts.leave_rebalance_s = (assignments.a_at - left) / 1000;
  checks.leave_rebalances_fast = assignments.a === 4 && assignments.a_at > left && assignments.a_at - left < 5000;
  await a.disconnect();

  await producer.send({ topic: groupTopic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `g${200 + i}`, partition: i % 4 })) });
  await producer.disconnect();
  seen.clear();
  const c = await member('c');
  for (let i = 0; i < 300 && seen.size < 10; i++) await sleep(100);
  await sleep(500);
  checks.new_member_resumes_exactly = seen.size === 10 && Array.from({ length: 10 }, (_, i) => `g${200 + i}`).every((v) => seen.has(v));
  await c.disconnect();
  await admin.disconnect();
  console.log(JSON.stringify({ checks, facts }));
}

main().catch((e) => { console.error(e); process.exit(1); });
