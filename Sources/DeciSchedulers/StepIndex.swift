/// The position bookkeeping of diffusers' index-tracking schedulers (`_step_index`, `_begin_index`,
/// `index_for_timestep`).
struct StepIndex: Sendable, Equatable {
    var step: Int?
    var begin: Int?

    /// diffusers picks the second match when a timestep repeats, so an image-to-image start that
    /// lands in the middle of a repeated pair does not skip a step.
    static func lookup(_ t: Float, in timesteps: [Float], orLast: Bool, scheduler: String) throws(SchedulerError) -> Int {
        let matches = timesteps.indices.filter { timesteps[$0] == t }
        if matches.isEmpty {
            if orLast, !timesteps.isEmpty { return timesteps.count - 1 }
            throw .timestepNotInSchedule(scheduler: scheduler, timestep: t)
        }
        return matches.count > 1 ? matches[1] : matches[0]
    }

    /// The index the next step uses: the tracked one, else the begin index, else a lookup.
    func current(for t: Float, in timesteps: [Float], orLast: Bool = false, scheduler: String) throws(SchedulerError) -> Int {
        if let step { return step }
        if let begin { return begin }
        return try Self.lookup(t, in: timesteps, orLast: orLast, scheduler: scheduler)
    }

    /// `add_noise`'s choice: look up unless a begin index is set, then prefer the tracked index.
    func forAddNoise(_ t: Float, in timesteps: [Float], orLast: Bool = false, scheduler: String) throws(SchedulerError) -> Int {
        guard let begin else { return try Self.lookup(t, in: timesteps, orLast: orLast, scheduler: scheduler) }
        return step ?? begin
    }
}

/// Where a sigma scheduler stands: the timesteps of the current schedule, their sigmas (one more,
/// the final one) and the step index. `setTimesteps` replaces it whole, which resets the indices.
struct SigmaTimeline: Sendable, Equatable {
    var timesteps: [Float] = []
    var sigmas: [Float]
    var index = StepIndex()
}
