import DeciDiffusion
import DeciTensor
import Foundation

/// Seconds per image and peak memory for a pipeline, the way the model card's runtime table
/// states them: text encoder once, N denoising steps (batch 2 with guidance), one VAE decode.
public enum PipelineBenchmark {
    public struct Report: Sendable {
        public var size: Int
        public var precision: Precision
        public var loadSeconds: Double
        public var textEncoderSeconds: Double
        /// Mean seconds of one denoising step (one batch-2 UNet call plus scheduler and guidance).
        public var stepSeconds: Double
        public var vaeDecodeSeconds: Double
        public var measuredSteps: Int
        /// Peak resident set of the process so far (VmHWM), bytes.
        public var peakRSSBytes: Int

        /// Seconds per image for `steps` steps from the measured stage times.
        public func secondsPerImage(steps: Int) -> Double { textEncoderSeconds + Double(steps) * stepSeconds + vaeDecodeSeconds }
    }

    /// Warms up at this size (one step, so primitives and packed weights exist; skipped with
    /// `warmUp: false` when an earlier run at this size did it), then measures a run of
    /// `measureSteps` steps.
    public static func run(_ pipeline: DiffusionPipeline, size: Int, measureSteps: Int, warmUp: Bool = true,
                           prompt: String = "a photo of an astronaut riding a horse on mars") throws -> Report {
        var request = GenerationRequest(prompt: prompt)
        request.width = size
        request.height = size
        request.seed = 0
        if warmUp {
            request.steps = 1
            _ = try pipeline.generate(request)
        }
        request.steps = measureSteps
        let r = try pipeline.generate(request)
        let t = r.timings
        return Report(size: size, precision: pipeline.precision, loadSeconds: pipeline.loadSeconds, textEncoderSeconds: t.textEncoder,
                      stepSeconds: t.denoising / Double(max(t.steps, 1)), vaeDecodeSeconds: t.vaeDecode, measuredSteps: t.steps,
                      peakRSSBytes: peakResidentBytes())
    }

    /// The stage-wise minimum of `a` and `b` (best of several runs at one size); peak RSS is the larger.
    public static func best(_ a: Report, _ b: Report) -> Report {
        var r = a
        r.textEncoderSeconds = min(a.textEncoderSeconds, b.textEncoderSeconds)
        r.stepSeconds = min(a.stepSeconds, b.stepSeconds)
        r.vaeDecodeSeconds = min(a.vaeDecodeSeconds, b.vaeDecodeSeconds)
        r.peakRSSBytes = max(a.peakRSSBytes, b.peakRSSBytes)
        return r
    }

    /// VmHWM from /proc/self/status (0 where unavailable).
    public static func peakResidentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}
