// What the scheduler families share, as protocol extensions (the shape of Apple's
// ml-stable-diffusion `Scheduler.swift`): each scheduler file then holds only its own algorithm.
// The protocols are internal; their public members are the `Scheduler` witnesses of the public
// structs that conform.
//
//   TrainedScheduler          every scheduler: the training schedule, the step-count check and the
//                             variance-preserving defaults (unit initial noise, unscaled input)
//   ├─ AlphaBarScheduler      DDIM, DDPM, PNDM, LCM: noised at alphas_cumprod[t]
//   └─ SigmaScheduler         the index-tracking sigma schedulers
//      ├─ VESigmaScheduler    Euler, Euler a, Heun, LMS: samples in sigma (VE) scale
//      └─ VPSigmaScheduler    DPM-Solver, UniPC: VP samples over a sigma schedule
//
// Besides, SampleClamping (SampleClamp.swift) gives the thresholding schedulers their
// `elementsPerImage`, kept in the clamp that uses it.

/// A scheduler built on a training noise schedule.
protocol TrainedScheduler: Scheduler {
    var settings: ScheduleSettings { get }
}

extension TrainedScheduler {
    /// Every scheduler here is named after the diffusers class it reproduces; static so that an
    /// initialiser can name it in its errors before the value exists.
    static var className: String { String(describing: self) }
    public var className: String { Self.className }
    public var order: Int { 1 }
    var schedule: NoiseSchedule { settings.schedule }
    var predictionType: PredictionType { settings.predictionType }
    var timestepSpacing: TimestepSpacing { settings.timestepSpacing }
    var stepsOffset: Int { settings.stepsOffset }
    var trainSteps: Int { schedule.numTrainTimesteps }

    public var initNoiseSigma: Float { 1 }

    public func scaleModelInput(_ sample: [Float], timestep: Float) throws(SchedulerError) -> [Float] { sample }

    /// diffusers' `set_timesteps` check: between 1 and `num_train_timesteps` inference steps.
    func checkStepCount(_ steps: Int) throws(SchedulerError) {
        guard steps >= 1, steps <= trainSteps else {
            throw .invalidStepCount(scheduler: className, steps: steps, reason: "must be within 1...\(trainSteps)")
        }
    }

    /// Integer training timestep for schedulers that index alphas_cumprod with it.
    func trainIndex(_ t: Float) throws(SchedulerError) -> Int {
        guard t.isFinite, t == t.rounded(), t >= 0, Int(t) < trainSteps else {
            throw .timestepNotInSchedule(scheduler: className, timestep: t)
        }
        return Int(t)
    }
}

/// A scheduler that steps on integer training timesteps and noises at their alpha_bar.
protocol AlphaBarScheduler: TrainedScheduler {}

extension AlphaBarScheduler {
    /// sqrt(ab) x + sqrt(1 - ab) noise.
    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let alphaCumprod = schedule.alphasCumprod[try trainIndex(timestep)]
        try checkSize(noise, "noise", original.count)
        let a = alphaCumprod.squareRoot(), s = (1 - alphaCumprod).squareRoot()
        return map2(original, noise) { (x, n) in a * x + s * n }
    }
}

/// A scheduler that holds a sigma per timestep and tracks its position with diffusers' step and
/// begin indices.
protocol SigmaScheduler: TrainedScheduler {
    var timeline: SigmaTimeline { get set }
    /// Whether a timestep missing from the schedule means its last step, as the multistep solvers'
    /// `index_for_timestep` has it.
    var missingTimestepIsLast: Bool { get }
}

extension SigmaScheduler {
    public var timesteps: [Float] { timeline.timesteps }
    public var sigmas: [Float]? { timeline.sigmas }
    var sigmaSchedule: [Float] { timeline.sigmas }
    var index: StepIndex {
        get { timeline.index }
        set { timeline.index = newValue }
    }
    public var supportsBeginIndex: Bool { true }
    public mutating func setBeginIndex(_ i: Int) { index.begin = i }
    var missingTimestepIsLast: Bool { false }

    /// The index of the step that `timestep` starts.
    func currentIndex(_ timestep: Float) throws(SchedulerError) -> Int {
        try index.current(for: timestep, in: timesteps, orLast: missingTimestepIsLast, scheduler: className)
    }

    /// The checks a step opens with: the model output's size, and a step that has a next sigma.
    /// Returns the step's index.
    func stepIndex(modelOutput: [Float], sample: [Float], timestep: Float) throws(SchedulerError) -> Int {
        try checkSize(modelOutput, "modelOutput", sample.count)
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaSchedule.count else { throw .stepPastEnd(scheduler: className, stepIndex: i) }
        return i
    }

    /// The sigma `addNoise` uses for `timestep`.
    func addNoiseSigma(_ timestep: Float) throws(SchedulerError) -> Float {
        try sigma(at: index.forAddNoise(timestep, in: timesteps, orLast: missingTimestepIsLast, scheduler: className))
    }

    /// The sigma at index `i`, which a begin index past the end of the schedule can miss (an
    /// image-to-image start that keeps no step).
    func sigma(at i: Int) throws(SchedulerError) -> Float {
        guard sigmaSchedule.indices.contains(i) else { throw .stepPastEnd(scheduler: className, stepIndex: i) }
        return sigmaSchedule[i]
    }
}

/// A sigma scheduler whose samples are in sigma scale, x = x0 + sigma * eps.
protocol VESigmaScheduler: SigmaScheduler {}

extension VESigmaScheduler {
    public var initNoiseSigma: Float { Sigmas.initNoiseSigma(sigmaSchedule, spacing: timestepSpacing) }

    /// Before `setTimesteps` diffusers holds the full training schedule.
    static func trainingTimeline(_ schedule: NoiseSchedule) -> SigmaTimeline {
        SigmaTimeline(sigmas: schedule.trainSigmas.reversed() + [0])
    }

    /// The `set_timesteps` of Euler, Euler a, Heun and LMS (see `Sigmas.veSchedule`), `final`
    /// appended to the sigmas.
    func veTimeline(steps: Int, karras: Bool, sigmaMin: Double? = nil, sigmaMax: Double? = nil,
                    final: Float = 0) throws(SchedulerError) -> SigmaTimeline {
        try checkStepCount(steps)
        let (ts, sig) = Sigmas.veSchedule(schedule, spacing: timestepSpacing, steps: steps, offset: stepsOffset,
                                           karras: karras, sigmaMin: sigmaMin, sigmaMax: sigmaMax)
        return SigmaTimeline(timesteps: ts, sigmas: sig.map { Float($0) } + [final])
    }

    /// x / sqrt(sigma^2 + 1): the VP sample the denoiser was trained on.
    public func scaleModelInput(_ sample: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let sigma = try sigma(at: currentIndex(timestep))
        let scale = (sigma * sigma + 1).squareRoot()
        return map1(sample) { $0 / scale }
    }

    /// x + sigma * noise.
    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        let sigma = try addNoiseSigma(timestep)
        try checkSize(noise, "noise", original.count)
        return map2(original, noise) { (x, n) in x + n * sigma }
    }
}

/// A sigma scheduler whose samples stay in VP scale (the alpha and sigma of each step derive from
/// its VE sigma).
protocol VPSigmaScheduler: SigmaScheduler {}

extension VPSigmaScheduler {
    var missingTimestepIsLast: Bool { true }

    /// alpha x + sigma noise.
    public func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float] {
        try checkSize(noise, "noise", original.count)
        let (alpha, sigma) = Parameterization.alphaSigma(fromVE: try addNoiseSigma(timestep))
        return map2(original, noise) { (x, n) in alpha * x + sigma * n }
    }
}
