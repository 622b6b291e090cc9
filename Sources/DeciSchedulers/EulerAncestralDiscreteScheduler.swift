import DeciRandom

/// Ancestral Euler sampling: an Euler step down to sigma_down plus fresh noise of size sigma_up
/// ("Euler a"). Matches diffusers `scheduling_euler_ancestral_discrete.py`, which draws noise on
/// every step, the last one included.
public struct EulerAncestralDiscreteScheduler: VESigmaScheduler {
    public let settings: ScheduleSettings

    var timeline: SigmaTimeline

    public init(config: SchedulerConfig) throws(SchedulerError) {
        settings = try ScheduleSettings(config: config, zeroSNR: .floored, spacing: .linspace)
        guard settings.predictionType != .sample else {
            throw .unsupportedOption(scheduler: Self.className, option: "prediction_type 'sample'")
        }
        timeline = Self.trainingTimeline(settings.schedule)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        timeline = try veTimeline(steps: steps, karras: false)
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        let sigma = sigmaSchedule[i], sigmaTo = sigmaSchedule[i + 1]
        let x0 = Parameterization.x0VE(predictionType, output: modelOutput, sample: sample, sigma: sigma)
        let from2 = sigma * sigma, to2 = sigmaTo * sigmaTo
        let sigmaUp = (to2 * (from2 - to2) / from2).squareRoot()
        let sigmaDown = (to2 - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        var prev = map2(sample, x0) { (s, x) in s + (s - x) / sigma * dt }
        let z = noise.normal(count: sample.count)
        prev = map2(prev, z) { (p, n) in p + n * sigmaUp }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
