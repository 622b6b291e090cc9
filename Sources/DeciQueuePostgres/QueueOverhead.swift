// The queue's own cost per job, without generating: enqueue, claim, one progress heartbeat and
// the result write (one 16 KB image), each timed over many jobs against a real database. What
// `decidiffusion worker --measure-overhead N` prints (tools/bench_queue.py runs it).
import DeciDiffusion
import DeciImage
import Foundation
import Logging

public enum QueueOverhead {
    public struct Figures: Sendable, CustomStringConvertible {
        public var jobs: Int
        /// Median milliseconds per call.
        public var enqueue, claim, progress, result: Double

        /// What a worker adds to each job: claim + progress + result.
        public var perJob: Double { claim + progress + result }

        public var description: String {
            "queue overhead over \(jobs) jobs (median ms): " + String(format: "enqueue %.2f, claim %.2f, progress %.2f, result %.2f; worker side per job (claim + progress + result) %.2f ms",
                                                                      enqueue, claim, progress, result, perJob)
        }
    }

    /// Runs `jobs` synthetic jobs under the model name `model`, which no real worker should serve.
    public static func measure(url: QueueURL, jobs: Int, model: String = "__overhead_bench__") throws(QueueError) -> Figures {
        let link = PostgresLink(url: url, logger: Logger(label: "decidiffusion.bench"))
        defer { link.close() }
        try PostgresJobQueue.migrateWaiting(link, logger: Logger(label: "decidiffusion.bench"))
        let store = JobStore(link: link)
        let png = Data((0..<16384).map { UInt8(truncatingIfNeeded: $0 &* 31) }).base64EncodedString()
        let parameters = StoredParameters(GenerationParameters(prompt: "bench", steps: 1, sampler: "DDIM", cfgScale: 7.5, seed: 1, width: 64, height: 64))
        var times: [[Double]] = [[], [], [], []]
        func timed<T>(_ k: Int, _ body: () throws(QueueError) -> T) throws(QueueError) -> T {
            let t = DispatchTime.now().uptimeNanoseconds
            let v = try body()
            times[k].append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
            return v
        }
        for _ in 0..<jobs {
            let id = JobID.make()
            _ = try timed(0) { () throws(QueueError) in try store.enqueue(id: id, model: model, seed: 1, spec: "{}", maxAttempts: 3, queueLimit: Int.max) }
            guard let claim = try timed(1, { () throws(QueueError) in try store.claim(owner: "bench", models: [model], lease: 30) }) else {
                throw .server("the benchmark's job was not claimable (is another bench running?)")
            }
            _ = try timed(2) { () throws(QueueError) in
                try store.heartbeat(claim, owner: "bench", lease: 30, beat: JobStore.Beat(progress: JobProgress(step: 1, totalSteps: 1)))
            }
            let outcome = JobStore.Outcome(state: .succeeded, error: nil, warnings: [], timings: nil, partial: false, progress: nil,
                                           resolved: nil, images: [StoredImage(png: png, parameters: parameters)])
            _ = try timed(3) { () throws(QueueError) in try store.finish(claim, owner: "bench", outcome: outcome) }
        }
        _ = try link.run("DELETE FROM deci_jobs WHERE model = \(model)")
        func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.sorted()[v.count / 2] }
        return Figures(jobs: jobs, enqueue: median(times[0]), claim: median(times[1]), progress: median(times[2]), result: median(times[3]))
    }
}
