import DeciRandom

/// Latent consistency model sampling (Luo et al. 2023): each step maps to the consistency
/// function's x0 estimate, then re-noises it to the next timestep with fresh noise (all steps but
/// the last). Matches diffusers `scheduling_lcm.py`; the timestep spacing setting does not apply.
public struct LCMScheduler: AlphaBarScheduler, SampleClamping {
    public let settings: ScheduleSettings
    public let originalInferenceSteps: Int
    public let timestepScaling: Float
    var clamp: SampleClamp
    let finalAlphaCumprod: Float

    public private(set) var timesteps: [Float] = []
    private var index = StepIndex()
    public var supportsBeginIndex: Bool { true }

    public init(config: SchedulerConfig) throws(SchedulerError) {
        // diffusers' LCMScheduler stores timestep_spacing and steps_offset but its set_timesteps uses neither.
        settings = try ScheduleSettings(config: config, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: .scaledLinear,
                                        zeroSNR: .plain, spacing: .leading)
        originalInferenceSteps = config.originalInferenceSteps ?? 50
        timestepScaling = Float(config.timestepScaling ?? 10)
        clamp = SampleClamp(config: config, clipSampleDefault: false)
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : settings.schedule.alphasCumprod[0]
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        guard originalInferenceSteps >= 1, originalInferenceSteps <= trainSteps else {
            throw .invalidConfigValue(key: "original_inference_steps", value: "\(originalInferenceSteps)",
                                      allowed: ["1...\(trainSteps)"])
        }
        guard steps >= 1, steps <= originalInferenceSteps else {
            throw .invalidStepCount(scheduler: className, steps: steps,
                                    reason: "must be within 1...\(originalInferenceSteps) (original_inference_steps)")
        }
        // The distillation schedule: every k-th training timestep, from which N are picked evenly.
        let k = trainSteps / originalInferenceSteps
        let origin = (1...originalInferenceSteps).map { $0 * k - 1 }.reversed().map { $0 }
        let picks = NumPy.linspace(0, Double(origin.count), steps, endpoint: false).map { Int($0.rounded(.down)) }
        timesteps = picks.map { Float(origin[$0]) }
        index = StepIndex()
    }

    public mutating func setBeginIndex(_ i: Int) { index.begin = i }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard !timesteps.isEmpty else { throw .timestepsNotSet(scheduler: className) }
        try checkSize(modelOutput, "modelOutput", sample.count)
        let i = try index.current(for: timestep, in: timesteps, scheduler: className)
        let t = try trainIndex(timestep)
        let prevT = i + 1 < timesteps.count ? Int(timesteps[i + 1]) : t
        let alphaProdT = schedule.alphasCumprod[t]
        let alphaProdPrev = prevT >= 0 ? schedule.alphasCumprod[prevT] : finalAlphaCumprod
        let betaProdT = 1 - alphaProdT, betaProdPrev = 1 - alphaProdPrev

        // Boundary-condition scalings with sigma_data = 0.5.
        let scaled = timestep * timestepScaling
        let cSkip = 0.25 / (scaled * scaled + 0.25)
        let cOut = scaled / (scaled * scaled + 0.25).squareRoot()

        var x0 = Parameterization.x0(predictionType, output: modelOutput, sample: sample,
                                     alpha: alphaProdT.squareRoot(), sigma: betaProdT.squareRoot())
        x0 = clamp.apply(x0)
        let denoised = map2(x0, sample) { (x, s) in cOut * x + cSkip * s }
        let prev: [Float]
        if i != timesteps.count - 1 {
            let z = noise.normal(count: sample.count)
            let a = alphaProdPrev.squareRoot(), b = betaProdPrev.squareRoot()
            prev = map2(denoised, z) { (d, n) in a * d + b * n }
        } else {
            prev = denoised
        }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: denoised)
    }
}
