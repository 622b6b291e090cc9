import DeciRandom

/// Heun's second-order method in sigma space (Karras et al. 2022, algorithm 1): every timestep but
/// the last is visited twice, an Euler predictor then the trapezoidal corrector, so `timesteps`
/// repeats each of them. Matches diffusers `scheduling_heun_discrete.py` (which has no zero-SNR
/// option; a config asking for it gets the plain schedule).
public struct HeunDiscreteScheduler: Scheduler {
    public let className = "HeunDiscreteScheduler"
    public let order = 2
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let stepsOffset: Int
    public let useKarrasSigmas: Bool
    let clamp: SampleClamp
    let trainSteps: Int

    public private(set) var timesteps: [Float] = []
    private var sigmaSchedule: [Float] = []
    private var index = StepIndex()
    // The first-order half's state, pending its correction.
    private var prevDerivative: [Float]?
    private var pendingDt: Float?
    private var pendingSample: [Float]?

    public var sigmas: [Float]? { sigmaSchedule }
    public var initNoiseSigma: Float { Sigmas.initNoiseSigma(sigmaSchedule, spacing: timestepSpacing) }
    public var supportsBeginIndex: Bool { true }

    public init(config: SchedulerConfig) throws(SchedulerError) {
        try refuseUnsupportedSigmaOptions(config, scheduler: className)
        trainSteps = config.numTrainTimesteps ?? 1000
        schedule = try NoiseSchedule(
            numTrainTimesteps: trainSteps, betaStart: config.betaStart ?? 0.00085, betaEnd: config.betaEnd ?? 0.012,
            schedule: config.betaSchedule ?? .linear, trainedBetas: config.trainedBetas,
            rescaleZeroSNR: false, zeroSNRFloor: false)
        predictionType = config.predictionType ?? .epsilon
        timestepSpacing = config.timestepSpacing ?? .linspace
        stepsOffset = config.stepsOffset ?? 0
        useKarrasSigmas = config.useKarrasSigmas ?? false
        clamp = SampleClamp(clipSample: config.clipSample ?? false, clipSampleRange: Float(config.clipSampleRange ?? 1))
        try setTimesteps(trainSteps)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidStepCount(scheduler: className, steps: steps, reason: "must be within 1...\(trainSteps)")
        }
        let (ts, sig) = Sigmas.veSchedule(schedule, spacing: timestepSpacing, steps: steps, trainSteps: trainSteps,
                                           offset: stepsOffset, karras: useKarrasSigmas)
        let s = sig.map { Float($0) } + [0]
        sigmaSchedule = [s[0]] + s.dropFirst().dropLast().flatMap { [$0, $0] } + [0]
        timesteps = [ts[0]] + ts.dropFirst().flatMap { [$0, $0] }
        index = StepIndex()
        prevDerivative = nil
        pendingDt = nil
        pendingSample = nil
    }

    public mutating func setBeginIndex(_ i: Int) { index.begin = i }

    private var inFirstOrder: Bool { pendingDt == nil }

    public func scaleModelInput(_ sample: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let sigma = sigmaSchedule[try index.current(for: timestep, in: timesteps, scheduler: className)]
        let scale = (sigma * sigma + 1).squareRoot()
        return map1(sample) { $0 / scale }
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        try checkSize(modelOutput, "modelOutput", sample.count)
        let i = try index.current(for: timestep, in: timesteps, scheduler: className)
        guard i + 1 < sigmaSchedule.count, inFirstOrder || i >= 1 else {
            throw .stepPastEnd(scheduler: className, stepIndex: i)
        }
        let sigma = inFirstOrder ? sigmaSchedule[i] : sigmaSchedule[i - 1]
        let sigmaNext = inFirstOrder ? sigmaSchedule[i + 1] : sigmaSchedule[i]
        // The predictor evaluates the model at sigma, the corrector at sigma_next.
        let sigmaInput = inFirstOrder ? sigma : sigmaNext
        var x0 = Parameterization.x0VE(predictionType, output: modelOutput, sample: sample, sigma: sigmaInput)
        x0 = clamp.apply(x0, elementsPerImage: nil)

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

    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let i = try index.forAddNoise(timestep, in: timesteps, scheduler: className)
        return try addNoiseVE(original: original, noise: noise, sigma: sigmaSchedule[i])
    }
}
