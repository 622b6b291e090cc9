import DeciRandom

/// Ancestral Euler sampling: an Euler step down to sigma_down plus fresh noise of size sigma_up
/// ("Euler a"). Matches diffusers `scheduling_euler_ancestral_discrete.py`, which draws noise on
/// every step, the last one included.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let className = "EulerAncestralDiscreteScheduler"
    public let order = 1
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let stepsOffset: Int
    let trainSteps: Int

    public private(set) var timesteps: [Float] = []
    private var sigmaSchedule: [Float] = []
    private var index = StepIndex()

    public var sigmas: [Float]? { sigmaSchedule }
    public var initNoiseSigma: Float { Sigmas.initNoiseSigma(sigmaSchedule, spacing: timestepSpacing) }
    public var supportsBeginIndex: Bool { true }

    public init(config: SchedulerConfig) throws(SchedulerError) {
        trainSteps = config.numTrainTimesteps ?? 1000
        schedule = try NoiseSchedule(
            numTrainTimesteps: trainSteps, betaStart: config.betaStart ?? 0.0001, betaEnd: config.betaEnd ?? 0.02,
            schedule: config.betaSchedule ?? .linear, trainedBetas: config.trainedBetas,
            rescaleZeroSNR: config.rescaleBetasZeroSnr ?? false, zeroSNRFloor: true)
        predictionType = config.predictionType ?? .epsilon
        guard predictionType != .sample else {
            throw .unsupportedOption(scheduler: className, option: "prediction_type 'sample'")
        }
        timestepSpacing = config.timestepSpacing ?? .linspace
        stepsOffset = config.stepsOffset ?? 0
        sigmaSchedule = schedule.trainSigmas.reversed() + [0]
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidStepCount(scheduler: className, steps: steps, reason: "must be within 1...\(trainSteps)")
        }
        let (ts, sig) = Sigmas.veSchedule(schedule, spacing: timestepSpacing, steps: steps, trainSteps: trainSteps,
                                           offset: stepsOffset, karras: false)
        timesteps = ts
        sigmaSchedule = sig.map { Float($0) } + [0]
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

    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let i = try index.forAddNoise(timestep, in: timesteps, scheduler: className)
        return try addNoiseVE(original: original, noise: noise, sigma: sigmaSchedule[i])
    }
}
