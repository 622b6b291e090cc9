import DeciRandom

/// What one scheduler step returns.
public struct SchedulerOutput: Sendable {
    /// The sample for the next timestep (x_{t-1}).
    public var prevSample: [Float]
    /// The scheduler's estimate of the clean sample, where it computes one (LCM: its `denoised`).
    public var predOriginalSample: [Float]?

    public init(prevSample: [Float], predOriginalSample: [Float]? = nil) {
        self.prevSample = prevSample
        self.predOriginalSample = predOriginalSample
    }
}

/// A diffusion sampler with diffusers' method contract. Samples are flat float32 arrays holding any
/// number of images; all arithmetic is element-wise except where noted (thresholding).
///
/// A denoising loop is:
/// ```
/// var latents = noise.map { $0 * scheduler.initNoiseSigma }
/// for t in try scheduler.prepareTimesteps(steps: 30) {
///     let input = try scheduler.scaleModelInput(latents, timestep: t)
///     let output = model(input, t)
///     latents = try scheduler.step(modelOutput: output, timestep: t, sample: latents, noise: &rng).prevSample
/// }
/// ```
public protocol Scheduler: Sendable {
    /// The diffusers class this reproduces, e.g. "DDIMScheduler".
    var className: String { get }
    /// Model evaluations per timestep of the underlying method (2 for Heun); diffusers' `order`,
    /// used to cut the schedule for image-to-image.
    var order: Int { get }
    /// The timesteps of the current schedule, as the values the denoiser is conditioned on.
    var timesteps: [Float] { get }
    /// The sigma schedule (one more entry than `timesteps`) for sigma-based schedulers; nil otherwise.
    var sigmas: [Float]? { get }
    /// Standard deviation of the initial noise: the pipeline multiplies unit normal noise by it.
    var initNoiseSigma: Float { get }
    /// Whether the scheduler tracks its position by a step index that `setBeginIndex` can set.
    var supportsBeginIndex: Bool { get }
    /// Elements per image in the flat samples, for the per-image operations (dynamic thresholding).
    /// nil treats a whole sample as one image; schedulers without such operations ignore it.
    var elementsPerImage: Int? { get set }

    /// Builds the schedule for `steps` inference steps and resets all multistep state.
    mutating func setTimesteps(_ steps: Int) throws(SchedulerError)
    /// Starts stepping at `index` of `timesteps` instead of locating the first timestep passed in.
    mutating func setBeginIndex(_ index: Int)
    /// Scales the sample for the denoiser's input at `timestep` (the identity for VP schedulers).
    func scaleModelInput(_ sample: [Float], timestep: Float) throws(SchedulerError) -> [Float]
    /// One reverse step from `timestep`. Stochastic schedulers draw their noise from `noise`, in
    /// the order and sizes diffusers draws it with `randn_tensor`; others never touch it.
    mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                       noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput
    /// Noises a clean sample to `timestep` (image-to-image start).
    func addNoise(original: [Float], noise: [Float], timestep: Float) throws(SchedulerError) -> [Float]
}

extension Scheduler {
    public var supportsBeginIndex: Bool { false }
    public mutating func setBeginIndex(_ index: Int) {}
    public var sigmas: [Float]? { nil }
    public var elementsPerImage: Int? {
        get { nil }
        set {}
    }

    /// Text-to-image schedule: `setTimesteps(steps)` and, where the scheduler tracks a step index,
    /// a start at index 0 (what the SDXL pipeline makes explicit; the SD pipeline's lookup of the
    /// first timestep agrees unless that timestep repeats, where diffusers would skip a step).
    @discardableResult
    public mutating func prepareTimesteps(steps: Int) throws(SchedulerError) -> [Float] {
        try setTimesteps(steps)
        if supportsBeginIndex { setBeginIndex(0) }
        return timesteps
    }

    /// Image-to-image schedule, diffusers' `get_timesteps`: keep the last `int(steps * strength)`
    /// steps (times `order`) and start the scheduler there.
    public mutating func prepareTimesteps(steps: Int, strength: Double) throws(SchedulerError) -> [Float] {
        guard strength >= 0, strength <= 1 else { throw .invalidStrength(strength) }
        try setTimesteps(steps)
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let start = max(steps - initTimestep, 0) * order
        if supportsBeginIndex { setBeginIndex(start) }
        return Array(timesteps.dropFirst(start))
    }
}
