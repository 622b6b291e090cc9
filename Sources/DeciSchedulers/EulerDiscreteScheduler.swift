import DeciRandom

/// Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, algorithm 2, with
/// optional churn). Matches diffusers `scheduling_euler_discrete.py`.
public struct EulerDiscreteScheduler: VESigmaScheduler {
    public let settings: ScheduleSettings
    public let sigmaOptions: SigmaOptions

    /// Karras "churn": extra noise injected per step (0 disables it, the diffusers default).
    public var sChurn: Float = 0
    public var sTmin: Float = 0
    public var sTmax: Float = .infinity
    public var sNoise: Float = 1

    var timeline: SigmaTimeline

    public init(config: SchedulerConfig) throws(SchedulerError) {
        sigmaOptions = try SigmaOptions(config: config, scheduler: Self.className)
        if let it = config.interpolationType, it != "linear" {
            throw .unsupportedOption(scheduler: Self.className, option: "interpolation_type '\(it)'")
        }
        if let tt = config.timestepType, tt != "discrete" {
            throw .unsupportedOption(scheduler: Self.className, option: "timestep_type '\(tt)'")
        }
        settings = try ScheduleSettings(config: config, zeroSNR: .floored, spacing: .linspace)
        timeline = Self.trainingTimeline(settings.schedule)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        let o = sigmaOptions
        timeline = try veTimeline(steps: steps, karras: o.useKarrasSigmas, sigmaMin: o.sigmaMin, sigmaMax: o.sigmaMax,
                                  final: schedule.finalSigma(o.finalSigmasType))
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        let sigma = sigmaSchedule[i]
        // gamma is a Python float in diffusers; only gamma + 1 meets the float32 sigma.
        let gamma = (sTmin <= sigma && sigma <= sTmax)
            ? min(Double(sChurn) / Double(sigmaSchedule.count - 1), 2.0.squareRoot() - 1) : 0
        let sigmaHat = sigma * Float(gamma + 1)
        var sample = sample
        if gamma > 0 {
            let z = noise.normal(count: sample.count)
            let s = (sigmaHat * sigmaHat - sigma * sigma).squareRoot()
            let sn = sNoise
            sample = map2(sample, z) { (x, n) in x + (n * sn) * s }
        }
        let x0: [Float]
        switch predictionType {
        case .epsilon: x0 = Parameterization.x0VE(.epsilon, output: modelOutput, sample: sample, sigma: sigmaHat)
        default: x0 = Parameterization.x0VE(predictionType, output: modelOutput, sample: sample, sigma: sigma)
        }
        let dt = sigmaSchedule[i + 1] - sigmaHat
        let prev = map2(sample, x0) { (s, x) in s + (s - x) / sigmaHat * dt }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
