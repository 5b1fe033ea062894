// Times the browser verifier's work for a whole access history proven by its digest
// (docs/performance.md, "One proof for a whole history"): strip the review fields of each event
// and chain it, for 10, 100 and 1,000 events. Run: npx tsx tools/bench-digest.mts
import { create, toBinary } from '@bufbuild/protobuf';
import { accessLeaf, digestOf } from '../src/digest.ts';
import { AccessEventSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { Purpose } from '../src/gen/medledger/v1/common_pb.ts';

for (const n of [10, 100, 1000]) {
  const values = Array.from({ length: n }, (_, i) =>
    toBinary(
      AccessEventSchema,
      create(AccessEventSchema, {
        patientId: 'pt-5f2b9c1d0e7a4b3c8d6e1f0a2b3c1000',
        index: BigInt(i),
        actor: 'hospital-a',
        recordId: `obs-${i}`,
        dataClass: 'Observation',
        purpose: Purpose.TREAT,
        consentId: 'c-17',
        height: 1000n + BigInt(i),
        time: 1_765_000_000n + BigInt(i),
        practitioner: 'did:medledger:3f9a0c4b2e1d8f7a6b5c4d3e2f1a0b9c',
      }),
    ),
  );
  digestOf(values.map(accessLeaf)); // warm up
  const runs = 20;
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) digestOf(values.map(accessLeaf));
  const ms = (performance.now() - t0) / runs;
  console.log(`${n} events: ${ms.toFixed(2)} ms to chain (mean of ${runs} runs)`);
}
