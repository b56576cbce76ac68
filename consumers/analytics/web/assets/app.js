// The dashboard is drawn on the server; this only makes the picker quicker to use: choosing
// a platform shows it at once, and the hour inputs keep whole hours (the aggregates' grain).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("picker");
  form.elements.platform.addEventListener("change", () => form.submit());
  for (const name of ["from", "to"]) {
    const input = form.elements[name];
    input.addEventListener("change", () => {
      if (input.value.length >= 16) input.value = input.value.slice(0, 14) + "00";
    });
  }
});
