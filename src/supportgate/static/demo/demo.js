// The demo site's own script: it only lets a reader dismiss the nag bar.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-dismiss]") : null;
  if (button) button.closest("[data-nag]")?.remove();
});
