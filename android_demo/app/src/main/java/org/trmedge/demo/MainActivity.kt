package org.trmedge.demo

import android.app.Activity
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import java.io.File
import java.util.Locale
import kotlin.concurrent.thread

/** One screen: a puzzle (typed, or drawn from the held-out puzzles in assets), Solve, and the grid
 *  filling in step by step with the halting probability and milliseconds per step. */
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
            thread(name = "trm-solve") {
                val message = try {
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
                    String.format(Locale.ROOT, "halted after %d step%s, %.1f ms in all", steps, if (steps == 1) "" else "s", total)
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
