package org.trmedge.demo

/** The native runner (export/executorch/runner) through JNI: src/main/cpp/trm_jni.cpp.
 *  Every failure is an IllegalArgumentException carrying the runner's one-line message. */
object TrmNative {
    init {
        System.loadLibrary("trm_jni")
    }

    /** Opens a bundle folder (manifest.json, step.pte, init.bin): checks every file's sha256 and the
     *  model's inputs against the manifest. Returns a handle for the other calls. */
    @JvmStatic external fun open(bundleDir: String, threads: Int): Long

    /** The manifest's task.size: the grid side (9 for a 9x9 Sudoku, 30 for a 30x30 maze), 0 without one. */
    @JvmStatic external fun gridSize(handle: Long): Int

    /** Solves a puzzle given as text ('.' or '0' blank); halting is "q_halt" or "fixed". Calls
     *  [listener] after every supervision step and returns the final answer as text. */
    @JvmStatic external fun solve(handle: Long, puzzle: String, halting: String, threshold: Double,
                                  listener: StepListener): String

    /** Solves a puzzle as [views] views (the manifest's first; 0: its views.count), each answer mapped
     *  back and decided by [policy] ("vote", "best_q", "consensus", "best"). [agree], [wave] and [budget] are
     *  the policy's options (0: none). No policy ("" and 0s): the policy the manifest recommends for
     *  [views] (views.recommended, as `trm-runner --views K`; else its views.policy). Returns JSON:
     *  answer (text), views, policy (the one that decided), view_steps, chosen_view, agreeing_views. */
    @JvmStatic external fun solveViews(handle: Long, puzzle: String, halting: String, threshold: Double, views: Int,
                                       policy: String, agree: Int, wave: Int, budget: Int): String

    /** Solves an ARC task ([taskJson]: its JSON as ARC ships it, train pairs, test inputs, outputs
     *  optional) with the bundle's views of [taskId] (an ARC bundle's task_rows: each view the input
     *  under one of the task's augmentations, with its own puzzle row), each answer cropped, mapped back
     *  and voted. [views]: the task's first K views (0: all it lists); [policy], [agree], [wave],
     *  [budget] as in [solveViews] ("" and 0s: the full vote). Returns the JSON of `trm-edge run
     *  --arc-task --json`: per test input the attempts (grids as lists of rows, best first), votes
     *  ([count, mean halt probability]), view_steps, correct@1/correct@2 where the task gives the output;
     *  pass@1, pass@2, ms. */
    @JvmStatic external fun solveArc(handle: Long, taskJson: String, taskId: String, views: Int, policy: String,
                                     agree: Int, wave: Int, budget: Int): String

    /** The manifest's views.count: how many views the bundle's maker says to run. */
    @JvmStatic external fun defaultViews(handle: Long): Int

    @JvmStatic external fun close(handle: Long)
}

/** After each step: the answer so far, the halting probability sigmoid(q_halt), the step's time.
 *  Return false to stop the loop. Called on the thread that called [TrmNative.solve]. */
fun interface StepListener {
    fun onStep(step: Int, answer: String, haltProbability: Float, ms: Double): Boolean
}
