package org.trmedge.demo

import android.app.Activity
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.Spinner
import android.widget.TextView
import org.json.JSONObject
import java.io.File
import java.util.Locale
import kotlin.concurrent.thread

/** One screen: a puzzle (typed, or drawn from the held-out puzzles in assets), Solve, and the grid
 *  filling in step by step with the halting probability and milliseconds per step. With 4 or 8
 *  views, each view of the puzzle halts on its own and the policy the bundle's manifest recommends
 *  for that many views decides (views.recommended: consensus, stopping once 2 views agree). */
class MainActivity : Activity() {
    private var handle = 0L
    private lateinit var puzzles: List<String>

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        val grid = findViewById<SudokuGridView>(R.id.grid)
        val input = findViewById<EditText>(R.id.puzzle)
        val status = findViewById<TextView>(R.id.status)
        val solve = findViewById<Button>(R.id.solve)
        val views = findViewById<Spinner>(R.id.views)

        // The runner reads files by path: copy the bundle out of the APK, then open it (sha256 checked).
        puzzles = assets.open("puzzles.txt").bufferedReader().readLines().filter { it.isNotBlank() && !it.startsWith("#") }
        try {
            handle = TrmNative.open(copyAssets("bundle").path, Runtime.getRuntime().availableProcessors().coerceAtMost(4))
            status.text = getString(R.string.ready, puzzles.size)
        } catch (e: IllegalArgumentException) {
            status.text = e.message
            solve.isEnabled = false
        }

        findViewById<Button>(R.id.generate).setOnClickListener {
            input.setText(puzzles.random())
            grid.show(input.text.toString(), input.text.toString())
        }
        solve.setOnClickListener {
            val puzzle = input.text.toString().trim()
            solve.isEnabled = false
            grid.show(puzzle, puzzle)
            val k = intArrayOf(1, 4, 8)[views.selectedItemPosition.coerceIn(0, 2)]
            thread(name = "trm-solve") {
                val message = try {
                    if (k > 1) solveViews(puzzle, k, grid) else solveOne(puzzle, grid, status)
                } catch (e: IllegalArgumentException) {
                    e.message ?: e.toString()
                }
                runOnUiThread {
                    status.append("\n" + message)
                    solve.isEnabled = true
                }
            }
        }
    }

    /** One view: the grid fills in after every supervision step. */
    private fun solveOne(puzzle: String, grid: SudokuGridView, status: TextView): String {
        var total = 0.0
        var steps = 0
        TrmNative.solve(handle, puzzle, "q_halt", 0.5) { step, answer, p, ms ->
            total += ms
            steps = step
            runOnUiThread {
                grid.show(puzzle, answer)
                status.text = String.format(Locale.ROOT, "step %d   P(halt) %.3f   %.1f ms", step, p, ms)
            }
            true
        }
        return String.format(Locale.ROOT, "halted after %d step%s, %.1f ms in all", steps, if (steps == 1) "" else "s", total)
    }

    /** k views decided by the policy the manifest recommends for k (no policy given: views.recommended). */
    private fun solveViews(puzzle: String, k: Int, grid: SudokuGridView): String {
        val t0 = System.nanoTime()
        val r = JSONObject(TrmNative.solveViews(handle, puzzle, "q_halt", 0.5, k, "", 0, 0, 0))
        val ms = (System.nanoTime() - t0) / 1e6
        runOnUiThread { grid.show(puzzle, r.getString("answer")) }
        val steps = r.getJSONArray("view_steps")
        val total = (0 until steps.length()).sumOf { steps.getInt(it) }
        return String.format(Locale.ROOT, "%d of %d views agree, %d view-steps, %.1f ms", r.getInt("agreeing_views"), k,
                             total, ms)
    }

    override fun onDestroy() {
        TrmNative.close(handle)
        handle = 0L
        super.onDestroy()
    }

    private fun copyAssets(dir: String): File {
        val out = File(filesDir, dir).apply { mkdirs() }
        for (name in assets.list(dir).orEmpty()) {
            assets.open("$dir/$name").use { src -> File(out, name).outputStream().use { src.copyTo(it) } }
        }
        return out
    }
}
