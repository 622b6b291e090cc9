import DeciRandom

/// Heun's second-order method in sigma space (Karras et al. 2022, algorithm 1): every timestep but
/// the last is visited twice, an Euler predictor then the trapezoidal corrector, so `timesteps`
/// repeats each of them. Matches diffusers `scheduling_heun_discrete.py` (which has no zero-SNR
/// option; a config asking for it gets the plain schedule).
public struct HeunDiscreteScheduler: VESigmaScheduler {
    public var order: Int { 2 }
    public let settings: ScheduleSettings
    public let useKarrasSigmas: Bool
    let clamp: SampleClamp

    var timeline: SigmaTimeline
    // The first-order half's state, pending its correction.
    private var prevDerivative: [Float]?
    private var pendingDt: Float?
    private var pendingSample: [Float]?

    public init(config: SchedulerConfig) throws(SchedulerError) {
        try refuseUnsupportedSigmaOptions(config, scheduler: Self.className)
        settings = try ScheduleSettings(config: config, betaStart: 0.00085, betaEnd: 0.012, zeroSNR: .absent, spacing: .linspace)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        clamp = SampleClamp(config: config, hasThresholding: false, clipSampleDefault: false)
        // Replaced at once: diffusers' constructor sets the training-length schedule.
        timeline = SigmaTimeline(sigmas: [])
        try setTimesteps(trainSteps)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        let single = try veTimeline(steps: steps, karras: useKarrasSigmas)
        let ts = single.timesteps, s = single.sigmas
        timeline = SigmaTimeline(timesteps: [ts[0]] + ts.dropFirst().flatMap { [$0, $0] },
                                 sigmas: [s[0]] + s.dropFirst().dropLast().flatMap { [$0, $0] } + [0])
        prevDerivative = nil
        pendingDt = nil
        pendingSample = nil
    }

    private var inFirstOrder: Bool { pendingDt == nil }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        guard inFirstOrder || i >= 1 else { throw .stepPastEnd(scheduler: className, stepIndex: i) }
        let sigma = inFirstOrder ? sigmaSchedule[i] : sigmaSchedule[i - 1]
        let sigmaNext = inFirstOrder ? sigmaSchedule[i + 1] : sigmaSchedule[i]
        // The predictor evaluates the model at sigma, the corrector at sigma_next.
        let sigmaInput = inFirstOrder ? sigma : sigmaNext
        var x0 = Parameterization.x0VE(predictionType, output: modelOutput, sample: sample, sigma: sigmaInput)
        x0 = clamp.apply(x0)

        let prev: [Float]
        if inFirstOrder {
            let derivative = map2(sample, x0) { (s, x) in (s - x) / sigma }
            let dt = sigmaNext - sigma
            prevDerivative = derivative
            pendingDt = dt
            pendingSample = sample
            prev = map2(sample, derivative) { (s, d) in s + d * dt }
        } else {
            let d1 = map2(sample, x0) { (s, x) in (s - x) / sigmaNext }
            let derivative = map2(prevDerivative ?? d1, d1) { (a, b) in (a + b) / 2 }
            let dt = pendingDt ?? 0
            prev = map2(pendingSample ?? sample, derivative) { (s, d) in s + d * dt }
            prevDerivative = nil
            pendingDt = nil
            pendingSample = nil
        }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
