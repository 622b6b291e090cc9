import DeciRandom

/// Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, algorithm 2, with
/// optional churn). Matches diffusers `scheduling_euler_discrete.py`.
public struct EulerDiscreteScheduler: Scheduler {
    public let className = "EulerDiscreteScheduler"
    public let order = 1
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let stepsOffset: Int
    public let useKarrasSigmas: Bool
    public let finalSigmasType: FinalSigmasType
    let sigmaMin: Double?
    let sigmaMax: Double?
    let trainSteps: Int

    /// Karras "churn": extra noise injected per step (0 disables it, the diffusers default).
    public var sChurn: Float = 0
    public var sTmin: Float = 0
    public var sTmax: Float = .infinity
    public var sNoise: Float = 1

    public private(set) var timesteps: [Float] = []
    private var sigmaSchedule: [Float] = []
    private var index = StepIndex()

    public var sigmas: [Float]? { sigmaSchedule }
    public var initNoiseSigma: Float { Sigmas.initNoiseSigma(sigmaSchedule, spacing: timestepSpacing) }
    public var supportsBeginIndex: Bool { true }

    public init(config: SchedulerConfig) throws(SchedulerError) {
        try refuseUnsupportedSigmaOptions(config, scheduler: className)
        if let it = config.interpolationType, it != "linear" {
            throw .unsupportedOption(scheduler: className, option: "interpolation_type '\(it)'")
        }
        if let tt = config.timestepType, tt != "discrete" {
            throw .unsupportedOption(scheduler: className, option: "timestep_type '\(tt)'")
        }
        trainSteps = config.numTrainTimesteps ?? 1000
        schedule = try NoiseSchedule(
            numTrainTimesteps: trainSteps, betaStart: config.betaStart ?? 0.0001, betaEnd: config.betaEnd ?? 0.02,
            schedule: config.betaSchedule ?? .linear, trainedBetas: config.trainedBetas,
            rescaleZeroSNR: config.rescaleBetasZeroSnr ?? false, zeroSNRFloor: true)
        predictionType = config.predictionType ?? .epsilon
        timestepSpacing = config.timestepSpacing ?? .linspace
        stepsOffset = config.stepsOffset ?? 0
        useKarrasSigmas = config.useKarrasSigmas ?? false
        finalSigmasType = config.finalSigmasType ?? .zero
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
        // Before set_timesteps diffusers holds the full training schedule.
        sigmaSchedule = schedule.trainSigmas.reversed() + [0]
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidStepCount(scheduler: className, steps: steps, reason: "must be within 1...\(trainSteps)")
        }
        let (ts, sig) = Sigmas.veSchedule(schedule, spacing: timestepSpacing, steps: steps, trainSteps: trainSteps,
                                           offset: stepsOffset, karras: useKarrasSigmas, sigmaMin: sigmaMin, sigmaMax: sigmaMax)
        let last: Float
        switch finalSigmasType {
        case .zero: last = 0
        case .sigmaMin:
            let a0 = schedule.alphasCumprod[0]
            last = ((1 - a0) / a0).squareRoot()
        }
        timesteps = ts
        sigmaSchedule = sig.map { Float($0) } + [last]
        index = StepIndex()
    }

    public mutating func setBeginIndex(_ i: Int) { index.begin = i }

    public func scaleModelInput(_ sample: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let sigma = sigmaSchedule[try index.current(for: timestep, in: timesteps, scheduler: className)]
        let scale = (sigma * sigma + 1).squareRoot()
        return map1(sample) { $0 / scale }
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        try checkSize(modelOutput, "modelOutput", sample.count)
        let i = try index.current(for: timestep, in: timesteps, scheduler: className)
        guard i + 1 < sigmaSchedule.count else { throw .stepPastEnd(scheduler: className, stepIndex: i) }
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

    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let i = try index.forAddNoise(timestep, in: timesteps, scheduler: className)
        return try addNoiseVE(original: original, noise: noise, sigma: sigmaSchedule[i])
    }
}
