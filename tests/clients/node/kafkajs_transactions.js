// Transactions with kafkajs 2.2.4 against Moldau.
// Usage: node kafkajs_transactions.js BOOTSTRAP PREFIX [SCENARIO,...]
// A transactional producer and read_committed consumers: commit and abort over several partitions,
// an open transaction holding read_committed back, a consume-transform-produce loop whose offsets go
// into each transaction (sendOffsets, committed and aborted), zombie fencing by a second producer of
// the same transactionalId, and a transaction left open until the broker aborts it (the broker under
// test aborts timed-out transactions every 500 ms).
// Prints one JSON object of named checks (true when they held) and facts.
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, prefix] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kafkajs-transactions', brokers: [bootstrap], logLevel: logLevel.NOTHING });
const checks = {};
const facts = {};
const PARTITIONS = 3;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let admin;

async function create(topic, numPartitions = PARTITIONS) {
  await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }] });
}

async function transactional(transactionalId, extra = {}) {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, ...extra });
  await producer.connect();
  return producer;
}

function messages(tag, perPartition = 10) {
  const out = [];
  for (let i = 0; i < perPartition; i++) {
    for (let p = 0; p < PARTITIONS; p++) {
      out.push({ key: `${tag}-${p}-${i}`, value: tag, partition: p });
    }
  }
  return out;
}

// What a new consumer of the isolation level reads from the start: waits for `expected` records,
// then a further second for any record that should not be there (with none expected, 4 s in all).
async function read(topic, readUncommitted, expected) {
  const consumer = kafka.consumer({ groupId: `${topic}-reader-${Math.random()}`, readUncommitted, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  let reached;
  const done = new Promise((resolve) => { reached = resolve; });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push({ partition, key: message.key && message.key.toString(), value: message.value.toString() });
      if (seen.length >= expected) reached();
    },
  });
  // Nothing expected: long enough for the fetches that would bring something.
  await Promise.race([done, sleep(expected === 0 ? 3000 : 30000)]);
  await sleep(1000);
  await consumer.disconnect();
  return seen;
}

const values = (records) => records.map((r) => r.value).sort();
const repeat = (v, n) => Array(n).fill(v);

async function commitAndAbort() {
  const topic = `${prefix}-commit-abort`;
  await create(topic);
  const producer = await transactional(`${prefix}-tx-ca`);
  let txn = await producer.transaction();
  await txn.send({ topic, messages: messages('committed') });
  await txn.commit();
  txn = await producer.transaction();
  await txn.send({ topic, messages: messages('aborted') });
  await txn.abort();
  const committed = await read(topic, false, 30);
  checks.read_committed_sees_only_committed_over_3_partitions = JSON.stringify(values(committed)) === JSON.stringify(repeat('committed', 30));
  checks.read_committed_each_partition_in_order = [0, 1, 2].every((p) => JSON.stringify(committed.filter((r) => r.partition === p).map((r) => r.key))
    === JSON.stringify([...Array(10).keys()].map((i) => `committed-${p}-${i}`)));
  const all = values(await read(topic, true, 60));
  checks.read_uncommitted_sees_aborted_too = all.filter((v) => v === 'aborted').length === 30 && all.filter((v) => v === 'committed').length === 30;

  // An open transaction holds read_committed back at its first record; its commit releases it.
  txn = await producer.transaction();
  await txn.send({ topic, messages: messages('open', 3) });
  checks.open_transaction_invisible_to_read_committed = JSON.stringify(values(await read(topic, false, 30))) === JSON.stringify(repeat('committed', 30));
  await txn.commit();
  checks.committed_later_visible = JSON.stringify(values(await read(topic, false, 39))) === JSON.stringify([...repeat('committed', 30), ...repeat('open', 9)]);
  const offsets = await admin.fetchTopicOffsets(topic);
  facts.watermarks_after_three_transactions = offsets.sort((a, b) => a.partition - b.partition).map((o) => Number(o.high));
  // 10 committed + marker, 10 aborted + marker, 3 + marker on each partition.
  checks.markers_take_an_offset_each = facts.watermarks_after_three_transactions.every((h) => h === 26);
  await producer.disconnect();
}

async function sendOffsets() {
  const source = `${prefix}-source`;
  const sink = `${prefix}-sink`;
  const groupId = `${prefix}-group`;
  await create(source);
  await create(sink);
  const seed = kafka.producer();
  await seed.connect();
  await seed.send({ topic: source, messages: [...Array(30).keys()].map((i) => ({ value: `in-${i}`, partition: i % PARTITIONS })) });
  await seed.disconnect();

  // The loop: each batch's output and its offsets in one transaction, while the consumer is a member of the group.
  const producer = await transactional(`${prefix}-tx-offsets`);
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic: source, fromBeginning: true });
  let processed = 0;
  let transactions = 0;
  let finished;
  const done = new Promise((resolve) => { finished = resolve; });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const txn = await producer.transaction();
      await txn.send({ topic: sink, messages: batch.messages.map((m) => ({ value: `out-${m.value}`, partition: batch.partition })) });
      const next = (BigInt(batch.lastOffset()) + 1n).toString();
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: source, partitions: [{ partition: batch.partition, offset: next }] }] });
      await txn.commit();
      transactions++;
      processed += batch.messages.length;
      if (processed >= 30) finished();
    },
  });
  await Promise.race([done, sleep(30000)]);
  await consumer.disconnect();
  facts.loop_transactions = transactions;
  checks.loop_processed_input = processed === 30;

  const committedOffsets = async () => (await admin.fetchOffsets({ groupId, topics: [source] }))[0].partitions
    .sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
  facts.committed_offsets = await committedOffsets();
  checks.committed_offsets_at_input_ends = facts.committed_offsets.every((o) => o === 10);

  // Offsets sent to an aborted transaction change nothing.
  const txn = await producer.transaction();
  await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: source, partitions: [0, 1, 2].map((partition) => ({ partition, offset: '0' })) }] });
  await txn.abort();
  checks.aborted_offsets_not_committed = (await committedOffsets()).every((o) => o === 10);
  const output = values(await read(sink, false, 30));
  facts.output = output.join(',');
  checks.output_once = JSON.stringify(output) === JSON.stringify([...Array(30).keys()].map((i) => `out-in-${i}`).sort());

  // A new member of the group starts at the offsets the transactions committed: nothing left.
  const again = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await again.connect();
  await again.subscribe({ topic: source, fromBeginning: true });
  let left = 0;
  await again.run({ eachMessage: async () => { left++; } });
  await sleep(4000);
  await again.disconnect();
  checks.next_member_resumes_after_committed_offsets = left === 0;
  await producer.disconnect();
}

async function zombieFencing() {
  const topic = `${prefix}-zombie`;
  await create(topic);
  const transactionalId = `${prefix}-tx-zombie`;
  const zombie = await transactional(transactionalId);
  const zombieTxn = await zombie.transaction();
  await zombieTxn.send({ topic, messages: messages('zombie', 5) });
  // The successor's InitProducerId aborts the zombie's transaction and bumps the epoch.
  // (kafkajs sends a transactional InitProducerId with its first transaction.)
  const successor = await transactional(transactionalId);
  const txn = await successor.transaction();
  try {
    await zombieTxn.commit();
    checks.zombie_commit_refused = false;
  } catch (e) {
    facts.zombie_error = `${e.name}: ${e.type || ''} ${e.message}`;
    checks.zombie_commit_refused = true;
    checks.zombie_fenced_error = ['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH'].includes(e.type);
  }
  await txn.send({ topic, messages: messages('successor', 5) });
  await txn.commit();
  checks.zombie_records_aborted_successor_committed = JSON.stringify(values(await read(topic, false, 15))) === JSON.stringify(repeat('successor', 15));
  await zombie.disconnect().catch(() => {});
  await successor.disconnect();
}

async function timeout() {
  const topic = `${prefix}-timeout`;
  await create(topic, 1);
  const producer = await transactional(`${prefix}-tx-timeout`, { transactionTimeout: 2000 });
  const txn = await producer.transaction();
  await txn.send({ topic, messages: [0, 1, 2].map(() => ({ value: 'abandoned', partition: 0 })) });
  await sleep(4000);
  // The broker aborted it: an ABORT marker after the 3 records, and read_committed sees none of them.
  facts.timed_out_watermark = Number((await admin.fetchTopicOffsets(topic))[0].high);
  checks.timed_out_transaction_aborted_by_broker = facts.timed_out_watermark === 4 && (await read(topic, false, 0)).length === 0;
  try {
    await txn.commit();
    checks.commit_after_timeout_refused = false;
  } catch (e) {
    facts.timeout_error = `${e.name}: ${e.type || ''} ${e.message}`;
    checks.commit_after_timeout_refused = true;
  }
  await producer.disconnect().catch(() => {});
}

// One scenario's exception fails its checks (recorded as a fact) rather than the whole run.
async function attempt(name, body) {
  try {
    await body();
  } catch (e) {
    checks[`${name}_ran`] = false;
    facts[`${name}_error`] = `${e.name}: ${e.type || ''} ${e.message}`;
  }
}

async function main() {
  admin = kafka.admin();
  await admin.connect();
  const scenarios = { commit_abort: commitAndAbort, send_offsets: sendOffsets, zombie: zombieFencing, timeout };
  // An optional third argument runs only the named scenarios (comma-separated).
  const only = process.argv[4] ? process.argv[4].split(',') : Object.keys(scenarios);
  for (const name of only) await attempt(name, scenarios[name]);
  await admin.disconnect();
  console.log(JSON.stringify({ checks, facts }));
}

main().catch((e) => { console.error(e); process.exit(1); });
